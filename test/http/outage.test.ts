import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureAdminKey } from '../../src/bootstrap.js';
import { createPool } from '../../src/catalog/db.js';
import { createOperation, getOperation } from '../../src/catalog/operations.js';
import { createApp } from '../../src/http/app.js';
import { JOBS, QUEUES, jobIds } from '../../src/queues/names.js';
import { startWorkers, stopWorkers } from '../../src/workers/run.js';
import { startOwnRedis, type OwnRedis } from '../helpers/redis-server.js';
import { createTestService, waitFor, waitForOperation, type TestService } from '../helpers/service.js';

let redis: OwnRedis;
let svc: TestService;
let app: Express;
/** The same service with the rate limit off, so a POST reaches the producer's own Redis call. */
let unlimited: Express;
let admin: string;

beforeAll(async () => {
  redis = await startOwnRedis();
  svc = await createTestService({ REDIS_URL: redis.url });
  await ensureAdminKey(svc.ctx);
  admin = svc.env.WEDVAULT_ADMIN_KEY!;
  app = createApp(svc.ctx);
  unlimited = createApp({ ...svc.ctx, config: { ...svc.ctx.config, rateLimitPerMinute: 0 } });
});

afterAll(async () => {
  await redis?.start().catch(() => undefined);
  await svc?.cleanup();
  await redis?.kill();
});

const bearer = () => ({ Authorization: `Bearer ${admin}` });

async function operationCount(): Promise<number> {
  const { rows } = await svc.ctx.db.query<{ n: number }>('SELECT count(*)::int AS n FROM backup_operations');
  return rows[0]!.n;
}

/** Runs a request and measures how long its answer took. */
async function timed<T>(fn: () => Promise<T>): Promise<{ res: T; ms: number }> {
  const t0 = Date.now();
  const res = await fn();
  return { res, ms: Date.now() - t0 };
}

describe('during a Redis outage', () => {
  it('is ready while Redis answers', async () => {
    const ready = await request(app).get('/readyz').expect(200);
    expect(ready.body).toMatchObject({ status: 'ready', failing: [], redis: 'ok', catalog: 'ok' });
  });

  it('answers 503 fast on /readyz, /metrics and POST /api/backups, and writes no operation', async () => {
    const before = await operationCount();
    await redis.kill();

    const ready = await timed(() => request(app).get('/readyz'));
    expect(ready.res.status).toBe(503);
    expect(ready.res.body.failing).toEqual(['redis']);
    expect(ready.res.body.catalog).toBe('ok');
    expect(ready.ms).toBeLessThan(2_000);

    const metrics = await timed(() => request(app).get('/metrics').set(bearer()));
    expect(metrics.res.status).toBe(503);
    expect(metrics.res.body.error.details).toMatchObject({ dependency: 'redis' });
    expect(metrics.ms).toBeLessThan(5_000);

    // through the rate limiter (its Redis call fails first) and straight to the producer
    for (const target of [app, unlimited]) {
      const post = await timed(() =>
        request(target).post('/api/backups').set(bearer()).send({ type: 'files' }),
      );
      expect(post.res.status).toBe(503);
      expect(post.res.body.error.code).toBe('unavailable');
      expect(post.res.body.error.message).toMatch(/redis/);
      expect(post.res.headers['retry-after']).toBeDefined();
      expect(post.ms).toBeLessThan(5_000);
    }
    expect(await operationCount()).toBe(before);

    await svc.ctx.db.query(
      `INSERT INTO recovery_points (id, type, primary_target, checksum) VALUES ('rp-outage', 'full', 'local-primary', 'x')`,
    );
    const verify = await request(unlimited)
      .post('/api/backups/validation')
      .set(bearer())
      .send({ recoveryPointId: 'rp-outage', mode: 'quick' })
      .expect(503);
    expect(verify.body.error.details).toMatchObject({ dependency: 'redis' });
    const tests = await svc.ctx.db.query(`SELECT 1 FROM backup_tests WHERE recovery_point_id = 'rp-outage'`);
    expect(tests.rows).toEqual([]);
  });

  it('accepts the backup again once Redis is back', async () => {
    await redis.start();
    await waitFor(async () => (await request(app).get('/readyz')).status === 200, 20_000);
    const res = await request(app).post('/api/backups').set(bearer()).send({ type: 'files' }).expect(202);
    const op = await getOperation(svc.ctx.db, res.body.operationId);
    expect(op?.state).toBe('queued');
    const queue = svc.ctx.queues.queues[QUEUES.backup];
    const job = await queue.getJob(jobIds.backup(res.body.operationId));
    expect(job?.data.operationId).toBe(res.body.operationId);
    // Redis came back empty: the adds refused during the outage must not have landed late, as jobs
    // without a request behind them (the client was told 503 and may have sent another).
    await new Promise((r) => setTimeout(r, 2_000));
    const jobs = await queue.getJobs(['waiting', 'prioritized', 'delayed', 'active']);
    expect(jobs.map((j) => j.id)).toEqual([jobIds.backup(res.body.operationId)]);
  });
});

it('names the catalog when it is the dependency that fails', async () => {
  const db = createPool('postgres://postgres@127.0.0.1:1/nothing-listens-here');
  try {
    const res = await request(createApp({ ...svc.ctx, db }))
      .get('/readyz')
      .expect(503);
    expect(res.body).toMatchObject({ status: 'not ready', failing: ['catalog'], redis: 'ok' });
  } finally {
    await db.end();
  }
});

it('runs a job whose request rolled back after Redis took it: the worker writes the row', async () => {
  // What a timed-out add that still reached Redis leaves behind: a job and no operation row.
  const operationId = '7d1f9a52-3c4b-4e8a-9f00-5a1b2c3d4e5f';
  await svc.ctx.queues.queues[QUEUES.backup].add(
    JOBS.backup,
    { operationId, type: 'files', components: ['files'], requestedBy: 'admin' },
    { jobId: jobIds.backup(operationId) },
  );
  expect(await getOperation(svc.ctx.db, operationId)).toBeUndefined();
  const workers = startWorkers(svc.ctx, { queues: ['backup'], concurrency: 1 });
  try {
    const op = await waitForOperation(svc.ctx, operationId, 60_000);
    expect(op.recoveryPointId).toBeTruthy();
    const { rows } = await svc.ctx.db.query('SELECT requested_by FROM backup_operations WHERE id = $1', [
      operationId,
    ]);
    expect(rows[0].requested_by).toBe('admin');
  } finally {
    await stopWorkers(workers);
  }
});

it('runs a job that a worker takes before its request committed the row', async () => {
  // The API's order: row inserted in a transaction, job added, commit. Hold the commit back.
  const operationId = '0b7e5c1a-2d3f-4a6b-8c9d-112233445566';
  const client = await svc.ctx.db.connect();
  const workers = startWorkers(svc.ctx, { queues: ['backup'], concurrency: 1 });
  try {
    await client.query('BEGIN');
    await createOperation(client, { id: operationId, type: 'files', priority: 4, requestedBy: 'api-client' });
    await svc.ctx.queues.queues[QUEUES.backup].add(
      JOBS.backup,
      { operationId, type: 'files', components: ['files'], requestedBy: 'api-client' },
      { jobId: jobIds.backup(operationId) },
    );
    await waitFor(
      async () =>
        (await svc.ctx.queues.queues[QUEUES.backup].getJobState(jobIds.backup(operationId))) === 'active',
    );
    await new Promise((r) => setTimeout(r, 500));
    await client.query('COMMIT');
    const op = await waitForOperation(svc.ctx, operationId, 60_000);
    expect(op.attempts).toBe(1);
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
    await stopWorkers(workers);
  }
});

it('an API started while Redis is down answers 503, and the refused job never lands later', async () => {
  await redis.kill();
  const late = await createTestService({ REDIS_URL: redis.url, WEDVAULT_RATE_LIMIT_PER_MINUTE: '0' });
  try {
    await ensureAdminKey(late.ctx);
    const lateApp = createApp(late.ctx);
    const res = await request(lateApp)
      .post('/api/backups')
      .set({ Authorization: `Bearer ${late.env.WEDVAULT_ADMIN_KEY}` })
      .send({ type: 'files' })
      .expect(503);
    expect(res.body.error.details).toMatchObject({ dependency: 'redis' });
    const { rows } = await late.ctx.db.query('SELECT count(*)::int AS n FROM backup_operations');
    expect(rows[0].n).toBe(0);

    await redis.start();
    await waitFor(async () => (await request(lateApp).get('/readyz')).status === 200, 20_000);
    await new Promise((r) => setTimeout(r, 2_000));
    const jobs = await late.ctx.queues.queues[QUEUES.backup].getJobs(['waiting', 'prioritized', 'delayed']);
    expect(jobs).toEqual([]);
  } finally {
    await late.cleanup();
  }
});
