import type { Worker } from 'bullmq';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDatabase } from '../../src/catalog/db.js';
import { ensureAdminKey } from '../../src/bootstrap.js';
import { createApp } from '../../src/http/app.js';
import { startWorkers, stopWorkers } from '../../src/workers/run.js';
import { createTestService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
let app: Express;
let workers: Worker[];
let admin: string;

beforeAll(async () => {
  svc = await createTestService();
  await ensureDatabase(svc.config.sources.postgres.url);
  await ensureAdminKey(svc.ctx);
  admin = svc.env.WEDVAULT_ADMIN_KEY!;
  app = createApp(svc.ctx);
  workers = startWorkers(svc.ctx, { queues: ['restore'], concurrency: 1 });
});

afterAll(async () => {
  await stopWorkers(workers ?? []);
  await svc?.cleanup();
});

const auth = () => ({ Authorization: `Bearer ${admin}` });
const UNREACHABLE = 'postgres://postgres@127.0.0.1:1/wv_nowhere';

async function refused(body: object, field: string): Promise<string> {
  const res = await request(app).post('/api/backups/recovery').set(auth()).send(body).expect(400);
  expect(res.body.error.details.map((d: { field: string }) => d.field)).toContain(field);
  return res.body.error.message as string;
}

describe('point-in-time recovery over REST', () => {
  it('refuses bad requests with 400 naming the field', async () => {
    await refused({ targetTime: '2026-01-01T00:00:00Z', targetLsn: '0/1' }, 'targetLsn');
    await refused({ targetLsn: '0/1', mode: 'merge', targetDatabase: UNREACHABLE }, 'weddingId');
    await refused({ targetLsn: '0/1', targetDatabase: 'mysql://x/y' }, 'targetDatabase');
    await refused({ targetLsn: '0/1', targetDatabase: 'not a url' }, 'targetDatabase');
    await refused({ targetTime: 'yesterday' }, 'targetTime');
    await refused({ restorePoint: 'never-made' }, 'restorePoint');
    const future = await refused({ targetTime: new Date(Date.now() + 3600_000).toISOString() }, 'targetTime');
    expect(future).toMatch(/in the future; the recoverable window is/);
    const early = await refused({ targetTime: '2020-01-01T12:00:00+02:00' }, 'targetTime');
    expect(early).toMatch(/before the earliest recoverable point; the recoverable window is/);
    const { rows } = await svc.ctx.db.query(`SELECT count(*)::int AS n FROM recoveries`);
    expect(rows[0].n).toBe(0);
  });

  it('queues a recovery (row and job), runs it and records the failure with its reason', async () => {
    const res = await request(app)
      .post('/api/backups/recovery')
      .set(auth())
      .send({ targetLsn: '0/1', targetDatabase: UNREACHABLE })
      .expect(202);
    const id = res.body.recoveryId as string;
    const job = await svc.ctx.queues.queues.restore.getJob(`recovery.${id}`);
    expect(job?.data).toMatchObject({ recoveryId: id, target: { lsn: '0/1' }, mode: 'new' });
    const done = await waitFor(async () => {
      const r = await request(app).get(`/api/backups/recovery/${id}`).set(auth()).expect(200);
      return r.body.state === 'failed' && r.body;
    });
    expect(done.error.message).toMatch(/127\.0\.0\.1|unreachable|connect|ECONNREFUSED/i);
    expect(done).toMatchObject({ recoveryId: id, mode: 'new', targetLsn: '0/1' });
    const audit = await waitFor(async () => {
      const a = await svc.ctx.db.query(`SELECT status FROM audit_log WHERE resource = $1`, [
        `recovery:${id}`,
      ]);
      return a.rows[0];
    });
    expect(audit.status).toBe(202);
  });

  it('names a restore point on the source and recovers to it by name', async () => {
    const res = await request(app)
      .post('/api/restore-points')
      .set(auth())
      .send({ name: 'before-import' })
      .expect(201);
    expect(res.body).toMatchObject({
      name: 'before-import',
      lsn: expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/),
    });
    await request(app).post('/api/restore-points').set(auth()).send({ name: 'before-import' }).expect(409);
    const list = await request(app).get('/api/restore-points').set(auth()).expect(200);
    expect(list.body.restorePoints[0]).toMatchObject({ name: 'before-import', lsn: res.body.lsn });
    const rec = await request(app)
      .post('/api/backups/recovery')
      .set(auth())
      .send({ restorePoint: 'before-import', targetDatabase: UNREACHABLE })
      .expect(202);
    const { rows } = await svc.ctx.db.query(
      `SELECT restore_point, target_lsn FROM recoveries WHERE id = $1`,
      [rec.body.recoveryId],
    );
    expect(rows[0]).toEqual({ restore_point: 'before-import', target_lsn: res.body.lsn });
  });

  it('answers GET /api/pitr per source and target', async () => {
    const res = await request(app).get('/api/pitr').set(auth()).expect(200);
    const src = res.body.sources[0];
    expect(src).toMatchObject({ source: 'postgres', slot: 'wedvault_pitr', gaps: [] });
    expect(src.lag).toEqual({ lagBytes: 0, slotStatus: 'missing' });
    expect(src.targets.map((t: { target: string }) => t.target)).toEqual(
      svc.config.targets.map((t) => t.name),
    );
  });
});
