import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Worker } from 'bullmq';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertApiKey } from '../../src/catalog/api-keys.js';
import { createApp } from '../../src/http/app.js';
import { startWorkers, stopWorkers } from '../../src/workers/run.js';
import { ensureAdminKey } from '../../src/bootstrap.js';
import { createTestService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
let app: Express;
let workers: Worker[];
let admin: string;
let reader: string;

beforeAll(async () => {
  svc = await createTestService();
  mkdirSync(path.join(svc.config.filesDir, 'docs'), { recursive: true });
  writeFileSync(path.join(svc.config.filesDir, 'docs', 'contract.txt'), 'signed contract\n'.repeat(1000));
  await ensureAdminKey(svc.ctx);
  admin = svc.env.WEDVAULT_ADMIN_KEY!;
  reader = await upsertApiKey(svc.ctx.db, 'reader', ['backups:read']);
  app = createApp(svc.ctx);
  workers = startWorkers(svc.ctx, { queues: ['backup', 'replicate', 'verify'], concurrency: 2 });
});

afterAll(async () => {
  await stopWorkers(workers ?? []);
  await svc?.cleanup();
});

const auth = (key: string) => ({ Authorization: `Bearer ${key}` });

describe('REST API', () => {
  it('answers health and readiness without a key', async () => {
    await request(app).get('/healthz').expect(200, { status: 'ok' });
    const ready = await request(app).get('/readyz').expect(200);
    expect(ready.body).toMatchObject({ status: 'ready', redis: 'ok', catalog: 'ok' });
    await request(app).get('/metrics').expect(401);
    const metrics = await request(app).get('/metrics').set(auth(admin)).expect(200);
    expect(metrics.text).toContain('wedvault_queue_jobs');
  });

  it('refuses a request without a key (401) and audits the attempt', async () => {
    const { rows: mark } = await svc.ctx.db.query(`SELECT coalesce(max(id), 0) AS id FROM audit_log`);
    const res = await request(app).post('/api/backups').send({ type: 'files' }).expect(401);
    expect(res.body.error.code).toBe('unauthorized');
    await request(app).get('/api/backups').set(auth('wv_not_a_key')).expect(401);
    await request(app).post('/api/backups').set(auth('wv_not_a_key')).send({ type: 'files' }).expect(401);
    // only mutating calls are audited; the audit rows are written when the responses have finished: wait for both, do not race them
    const rows = await waitFor(async () => {
      const r = await svc.ctx.db.query(
        `SELECT method, path, status, api_key_id FROM audit_log WHERE id > $1 AND path = '/api/backups' ORDER BY id`,
        [mark[0].id],
      );
      return r.rows.length >= 2 && r.rows;
    });
    expect(rows).toEqual([
      { method: 'POST', path: '/api/backups', status: 401, api_key_id: null },
      { method: 'POST', path: '/api/backups', status: 401, api_key_id: null },
    ]);
  });

  it('refuses a key without the scope (403)', async () => {
    const res = await request(app).post('/api/backups').set(auth(reader)).send({ type: 'files' }).expect(403);
    expect(res.body.error).toMatchObject({ code: 'forbidden', details: { required: 'backups:write' } });
    await request(app).get('/admin/queues').set(auth(reader)).expect(403);
  });

  it('names the bad field in a 400', async () => {
    const bad = await request(app)
      .post('/api/backups')
      .set(auth(admin))
      .send({ type: 'everything' })
      .expect(400);
    expect(bad.body.error.code).toBe('invalid_request');
    expect(bad.body.error.details[0].field).toBe('type');
    const extra = await request(app)
      .post('/api/backups')
      .set(auth(admin))
      .send({ type: 'files', color: 'red' })
      .expect(400);
    expect(JSON.stringify(extra.body.error.details)).toContain('color');
    const wedding = await request(app)
      .post('/api/backups')
      .set(auth(admin))
      .send({ type: 'files', weddingId: '../etc/passwd' })
      .expect(400);
    expect(wedding.body.error.details[0].field).toBe('weddingId');
    const malformed = await request(app)
      .post('/api/backups')
      .set({ ...auth(admin), 'content-type': 'application/json' })
      .send('{"type": ')
      .expect(400);
    expect(malformed.body.error.code).toBe('invalid_request');
    await request(app).get('/api/backups/status/not-a-uuid').set(auth(admin)).expect(400);
  });

  it('accepts a backup (202) whose status reaches completed, and lists its recovery point', async () => {
    const res = await request(app).post('/api/backups').set(auth(admin)).send({ type: 'files' }).expect(202);
    const { operationId } = res.body;
    expect(operationId).toMatch(/^[0-9a-f-]{36}$/);
    const status = await waitFor(async () => {
      const s = await request(app).get(`/api/backups/status/${operationId}`).set(auth(reader)).expect(200);
      if (s.body.state === 'failed') throw new Error(JSON.stringify(s.body.error));
      return s.body.state === 'completed' && s.body;
    });
    expect(status).toMatchObject({ operationId, state: 'completed', progress: 1 });
    expect(status.recoveryPointId).toBeTruthy();
    expect(status.bytes).toBe('signed contract\n'.length * 1000);
    expect(status.followUps.map((f: { queue: string }) => f.queue).sort()).toEqual(['replicate', 'verify']);

    const list = await waitFor(async () => {
      const l = await request(app).get('/api/backups').set(auth(reader)).expect(200);
      const p = l.body.recoveryPoints.find((x: { id: string }) => x.id === status.recoveryPointId);
      return p?.replicas.every((r: { state: string }) => r.state === 'verified') && p;
    });
    // Two local disks: honest about missing the rule.
    expect(list.meets321).toBe(false);
    expect(list.reason321).toBe('2 copies of 3; media: disk only; no offsite copy');
    const filtered = await request(app).get('/api/backups?meets321=true').set(auth(reader)).expect(200);
    expect(filtered.body.recoveryPoints).toEqual([]);

    const audited = await svc.ctx.db.query(`SELECT * FROM audit_log WHERE status = 202 AND resource = $1`, [
      `operation:${operationId}`,
    ]);
    expect(audited.rows).toHaveLength(1);
    expect(audited.rows[0].actor).toBe('admin');
  });

  it('serves the alias, the OpenAPI document, targets and Bull Board behind auth', async () => {
    await request(app).post('/api/backups/create').set(auth(admin)).send({ type: 'files' }).expect(202);
    const doc = await request(app).get('/api/openapi.json').set(auth(reader)).expect(200);
    expect(doc.body.paths['/api/backups']).toBeDefined();
    await request(app).get('/admin/queues').expect(401);
    await request(app).get('/admin/queues').set(auth(admin)).expect(200);
    const targets = await request(app).get('/api/targets').set(auth(admin)).expect(200);
    expect(targets.body.targets.map((t: { name: string }) => t.name)).toEqual([
      'local-primary',
      'local-secondary',
    ]);
  });
});
