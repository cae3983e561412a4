import pg from 'pg';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertApiKey } from '../../src/catalog/api-keys.js';
import { ensureDatabase } from '../../src/catalog/db.js';
import { createApp } from '../../src/http/app.js';
import { requestBackup } from '../../src/producers/backups.js';
import { closeCeremonyPools } from '../../src/engine/postgres/ceremony.js';
import { startWorkers, stopWorkers } from '../../src/workers/run.js';
import { createTestService, waitFor, waitForOperation, type TestService } from '../helpers/service.js';

const LIMIT = 5;
let svc: TestService;
let app: Express;

beforeAll(async () => {
  svc = await createTestService({ WEDVAULT_RATE_LIMIT_PER_MINUTE: String(LIMIT) });
  const url = svc.config.sources.postgres.url;
  await ensureDatabase(url);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`CREATE TABLE weddings (wedding_id text PRIMARY KEY, wedding_date date NOT NULL)`);
  await c.query(`INSERT INTO weddings VALUES ('w-here', current_date + 20)`);
  await c.end();
  app = createApp(svc.ctx);
});

afterAll(async () => {
  await closeCeremonyPools();
  await svc?.cleanup();
});

let keys = 0;
/** A fresh key per test: each has its own budget of LIMIT mutating requests a minute. */
async function newKey(scopes = ['backups:write', 'backups:read']): Promise<Record<string, string>> {
  const key = await upsertApiKey(svc.ctx.db, `client-${++keys}`, scopes);
  return { Authorization: `Bearer ${key}` };
}

const post = (headers: Record<string, string>, body: object) =>
  request(app).post('/api/backups').set(headers).send(body);

describe('per-key rate limit', () => {
  it(`answers 429 with Retry-After after ${LIMIT} mutating requests a minute`, async () => {
    const key = await newKey();
    // invalid bodies: counted like any mutating request, and no operations pile up
    for (let i = 0; i < LIMIT; i++) await post(key, { type: 'everything' }).expect(400);
    const res = await post(key, { type: 'files' }).expect(429);
    expect(res.body.error.code).toBe('rate_limited');
    const retryAfter = Number(res.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // reads are not limited, and another key has its own budget
    await request(app).get('/api/backups').set(key).expect(200);
    await post(await newKey(), { type: 'everything' }).expect(400);
  });
});

describe('repeated requests', () => {
  it('returns the queued operation for an identical request (200), a new one otherwise (202)', async () => {
    const key = await newKey();
    const first = await post(key, { type: 'files' }).expect(202);
    const again = await post(key, { type: 'files' }).expect(200);
    expect(again.body).toMatchObject({ operationId: first.body.operationId, existing: 'identical' });
    const other = await post(key, { type: 'full' }).expect(202);
    expect(other.body.operationId).not.toBe(first.body.operationId);
    const otherKey = await post(await newKey(), { type: 'files' }).expect(202);
    expect(otherKey.body.operationId).not.toBe(first.body.operationId);
    // once the operation has ended, the same request is a new backup
    await svc.ctx.db.query(`UPDATE backup_operations SET state = 'completed' WHERE id = $1`, [
      first.body.operationId,
    ]);
    const later = await post(key, { type: 'files' }).expect(202);
    expect(later.body.operationId).not.toBe(first.body.operationId);
  });

  it('collapses identical requests sent together onto one operation', async () => {
    const key = await newKey();
    const all = await Promise.all(Array.from({ length: LIMIT }, () => post(key, { type: 'incremental' })));
    expect(all.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 202]);
    expect(new Set(all.map((r) => r.body.operationId)).size).toBe(1);
    const { rows } = await svc.ctx.db.query(
      `SELECT count(*)::int AS n FROM backup_operations WHERE type = 'incremental' AND requested_by = $1`,
      [`client-${keys}`],
    );
    expect(rows[0].n).toBe(1);
  });

  it('replays an Idempotency-Key with the same body, refuses it with another (422)', async () => {
    const key = await newKey();
    const idem = { ...key, 'Idempotency-Key': 'nightly-2026-12-07' };
    const first = await post(idem, { type: 'full' }).expect(202);
    await svc.ctx.db.query(`UPDATE backup_operations SET state = 'completed' WHERE id = $1`, [
      first.body.operationId,
    ]);
    // even after the operation ended, the key names it
    const replay = await post(idem, { type: 'full' }).expect(200);
    expect(replay.body).toMatchObject({ operationId: first.body.operationId, existing: 'idempotency-key' });
    expect(replay.headers['idempotent-replayed']).toBe('true');
    const changed = await post(idem, { type: 'files' }).expect(422);
    expect(changed.body.error.code).toBe('unprocessable');
    await post({ ...key, 'Idempotency-Key': 'has space' }, { type: 'full' }).expect(400);
  });
});

describe('request details', () => {
  it('keeps a plain X-Request-Id and replaces a long or odd one in audit_log', async () => {
    const key = await newKey();
    const sent = ['req-1.A_b', 'x'.repeat(129), 'bad id\u00e9', 'y'.repeat(128)];
    const answered: (string | undefined)[] = [];
    for (const id of sent) {
      const res = await post({ ...key, 'X-Request-Id': id }, { type: 'everything' }).expect(400);
      answered.push(res.headers['x-request-id']);
    }
    // audit rows are written as responses finish, not necessarily in order: compare as sets
    const stored = await waitFor(async () => {
      const r = await svc.ctx.db.query<{ request_id: string }>(
        `SELECT request_id FROM audit_log WHERE actor = $1`,
        [`client-${keys}`],
      );
      return r.rows.length === sent.length && r.rows.map((x) => x.request_id);
    });
    expect(stored.sort()).toEqual([...answered].sort());
    expect(answered[0]).toBe('req-1.A_b');
    expect(answered[1]).toMatch(/^[0-9a-f-]{36}$/);
    expect(answered[2]).toMatch(/^[0-9a-f-]{36}$/);
    expect(answered[3]).toBe(sent[3]);
  });

  it('answers a wrong method with 405 and Allow', async () => {
    const key = await newKey();
    const del = await request(app).delete('/api/backups').set(key).expect(405);
    expect(del.headers.allow).toBe('GET, HEAD, POST');
    expect(del.body.error.code).toBe('method_not_allowed');
    const put = await request(app)
      .put('/api/backups/status/7d1f9a52-3c4b-4e8a-9f00-5a1b2c3d4e5f')
      .set(key)
      .expect(405);
    expect(put.headers.allow).toBe('GET, HEAD');
    expect((await request(app).post('/healthz').expect(405)).headers.allow).toBe('GET, HEAD');
    await request(app).get('/api/no-such-thing').set(key).expect(404);
  });

  it('names the path parameter of a bad id', async () => {
    const res = await request(app)
      .get('/api/backups/status/not-a-uuid')
      .set(await newKey())
      .expect(400);
    expect(res.body.error.details[0].field).toBe('operationId');
  });

  it('says an oversized body is too large', async () => {
    const res = await request(app)
      .post('/api/backups')
      .set(await newKey())
      .set('content-type', 'application/json')
      .send(JSON.stringify({ type: 'files', pad: 'x'.repeat(300 * 1024) }))
      .expect(413);
    expect(res.body.error.message).toMatch(/too large/);
    expect(JSON.stringify(res.body)).not.toMatch(/malformed/);
  });

  it('refuses /metrics without a key or the metrics:read scope', async () => {
    await request(app).get('/metrics').expect(401);
    await request(app)
      .get('/metrics')
      .set(await newKey())
      .expect(403);
    const res = await request(app)
      .get('/metrics')
      .set(await newKey(['metrics:read']))
      .expect(200);
    expect(res.text).toContain('wedvault_queue_jobs');
  });
});

it('documents the new statuses and headers in the OpenAPI document', async () => {
  const doc = (
    await request(app)
      .get('/api/openapi.json')
      .set(await newKey())
      .expect(200)
  ).body;
  const post = doc.paths['/api/backups'].post;
  expect(Object.keys(post.responses)).toEqual(
    expect.arrayContaining(['200', '202', '404', '405', '413', '422', '429', '503']),
  );
  expect(post.responses['429'].headers['Retry-After']).toBeDefined();
  expect(post.parameters.map((p: { name: string }) => p.name)).toEqual(['Idempotency-Key', 'X-Request-Id']);
});

describe('weddingId', () => {
  it('is accepted when in the source or in a recovery point, 404 when in neither', async () => {
    const key = await newKey();
    await post(key, { type: 'files', weddingId: 'w-here' }).expect(202);
    const missing = await post(key, { type: 'files', weddingId: 'w-ghost' }).expect(404);
    expect(missing.body.error.message).toMatch(/neither the source database nor any recovery point/);
    await svc.ctx.db.query(
      `INSERT INTO recovery_points (id, type, wedding_id, primary_target, checksum)
       VALUES ('rp-gone-wedding', 'full', 'w-gone', 'local-primary', 'x')`,
    );
    await post(key, { type: 'files', weddingId: 'w-gone' }).expect(202);
  });

  it('is accepted when only a database backup still holds it', async () => {
    const source = new pg.Client({ connectionString: svc.config.sources.postgres.url });
    await source.connect();
    const workers = startWorkers(svc.ctx, { queues: ['backup'], concurrency: 1 });
    try {
      await source.query(`INSERT INTO weddings VALUES ('w-deleted', current_date + 40)`);
      const { operationId } = await requestBackup(svc.ctx, { type: 'full', components: ['database'] });
      await waitForOperation(svc.ctx, operationId, 60_000);
      await source.query(`DELETE FROM weddings WHERE wedding_id = 'w-deleted'`);
    } finally {
      await stopWorkers(workers);
      await source.end();
    }
    const key = await newKey();
    await post(key, { type: 'files', weddingId: 'w-deleted' }).expect(202);
    await post(key, { type: 'files', weddingId: 'w-never' }).expect(404);
  });

  it('is accepted when the source cannot be reached', async () => {
    const config = svc.ctx.config;
    const down = createApp({
      ...svc.ctx,
      config: {
        ...config,
        sources: {
          ...config.sources,
          postgres: { ...config.sources.postgres, url: 'postgres://postgres@127.0.0.1:1/none' },
        },
      },
    });
    await request(down)
      .post('/api/backups')
      .set(await newKey())
      .send({ type: 'files', weddingId: 'w-ghost' })
      .expect(202);
  });
});
