// POST /api/compliance/erasure through the service: the erasure job destroys the wedding's keys on
// every target, proves it and signs a certificate; restores of the older point from either target
// hold nothing of the wedding.
import type { Worker } from 'bullmq';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { upsertApiKey } from '../../src/catalog/api-keys.js';
import { ensureAdminKey } from '../../src/bootstrap.js';
import { certificateValid, type ErasureCertificate } from '../../src/engine/erase.js';
import { Repository } from '../../src/engine/repo/repository.js';
import { restoreSnapshot } from '../../src/engine/restore.js';
import { createApp } from '../../src/http/app.js';
import { seedDatabase } from '../../src/seed/database.js';
import { startWorkers, stopWorkers } from '../../src/workers/run.js';
import { createTempDatabase, query, type TempDatabase } from '../helpers/pg.js';
import { createTestService, waitFor, waitForOperation, type TestService } from '../helpers/service.js';

let svc: TestService;
let app: Express;
let workers: Worker[];
let admin: string;
let writer: string;
let pointId: string;
const dbs: TempDatabase[] = [];
const auth = (key: string) => ({ Authorization: `Bearer ${key}` });

beforeAll(async () => {
  svc = await createTestService();
  await seedDatabase(svc.config.sources.postgres.url, { scale: 0.001 });
  await ensureAdminKey(svc.ctx);
  admin = svc.env.WEDVAULT_ADMIN_KEY!;
  writer = await upsertApiKey(svc.ctx.db, 'backups-only', ['backups:write']);
  app = createApp(svc.ctx);
  workers = startWorkers(svc.ctx, {
    queues: ['backup', 'replicate', 'verify', 'erasure'],
    concurrency: 2,
  });
  const res = await request(app).post('/api/backups').set(auth(admin)).send({ type: 'full' }).expect(202);
  const op = await waitForOperation(svc.ctx, res.body.operationId, 60_000);
  pointId = op.recoveryPointId!;
  // the copy on the second target too, before anything is erased
  await waitFor(async () => {
    const { rows } = await svc.ctx.db.query(
      `SELECT 1 FROM replicas WHERE recovery_point_id = $1 AND target = 'local-secondary' AND state IN ('replicated', 'verified')`,
      [pointId],
    );
    return rows.length > 0;
  }, 60_000);
}, 300_000);

afterAll(async () => {
  await stopWorkers(workers ?? []);
  for (const d of dbs) await d.drop();
  await svc?.cleanup();
});

const erase = (body: object, key = admin) =>
  request(app).post('/api/compliance/erasure').set(auth(key)).send(body);

it('refuses bad requests with the field named, unknown weddings with 404, keys without the scope with 403', async () => {
  const both = await erase({ weddingId: '3', supplierId: '1', reason: 'r', requestedBy: 'dpo' }).expect(400);
  expect(both.body.error.details[0].field).toBe('weddingId');
  await erase({ reason: 'r', requestedBy: 'dpo' }).expect(400);
  const noReason = await erase({ weddingId: '3', requestedBy: 'dpo' }).expect(400);
  expect(noReason.body.error.details[0].field).toBe('reason');
  await erase({ weddingId: '987654321', reason: 'r', requestedBy: 'dpo' }).expect(404);
  await erase({ weddingId: '3', reason: 'r', requestedBy: 'dpo' }, writer).expect(403);
  await request(app).get('/api/compliance/erasure/not-a-uuid').set(auth(admin)).expect(400);
  await request(app)
    .get('/api/compliance/erasure/7b0a4c52-6f1e-4a55-9d8e-0c2b7f9f1a01')
    .set(auth(admin))
    .expect(404);
});

it('refuses to erase a wedding under a legal hold, or held in a recovery point under one, naming the hold', async () => {
  const hold = async (body: object) =>
    (await request(app).post('/api/compliance/holds').set(auth(admin)).send(body).expect(201)).body as {
      id: string;
    };
  const onWedding = await hold({ weddingId: '5', reason: 'payment dispute' });
  const refused = await erase({ weddingId: '5', reason: 'r', requestedBy: 'dpo' }).expect(409);
  expect(refused.body.error.message).toContain(onWedding.id);
  await request(app).delete(`/api/compliance/holds/${onWedding.id}`).set(auth(admin)).expect(204);

  const onPoint = await hold({ recoveryPointId: pointId, reason: 'court order' });
  const held = await erase({ weddingId: '6', reason: 'r', requestedBy: 'dpo' }).expect(409);
  expect(held.body.error.message).toContain(onPoint.id);
  expect(held.body.error.message).toContain(pointId);
  await request(app).delete(`/api/compliance/holds/${onPoint.id}`).set(auth(admin)).expect(204);
});

it('erases one wedding on every target with a signed certificate; older points restore without it', async () => {
  const first = await erase({
    weddingId: '3',
    reason: 'asked to be forgotten',
    requestedBy: 'dpo@example.com',
  }).expect(202);
  const { erasureId } = first.body as { erasureId: string };
  // the same request again is the same erasure
  const again = await erase({ weddingId: '3', reason: 'asked again', requestedBy: 'dpo@example.com' }).expect(
    200,
  );
  expect(again.body).toMatchObject({ erasureId, existing: true });

  const done = await waitFor(async () => {
    const r = await request(app).get(`/api/compliance/erasure/${erasureId}`).set(auth(admin)).expect(200);
    if (r.body.status === 'failed') throw new Error(r.body.error);
    return r.body.status === 'completed' && r.body;
  }, 150_000);
  expect(done.targets.map((t: { target: string }) => t.target)).toEqual(['local-primary', 'local-secondary']);
  for (const t of done.targets) {
    expect(t.keysDestroyed.length).toBeGreaterThan(0);
    expect(t.verification).toMatch(/of wedding:3 no longer opens: erased/);
  }
  expect(certificateValid(done.certificate as ErasureCertificate, svc.config.masterKey)).toBe(true);

  for (const target of ['local-primary', 'local-secondary']) {
    const repo = await Repository.open(svc.ctx.storage(target), svc.config.masterKey);
    const db = await createTempDatabase(`erasure_api_${target.replace('-', '_')}`, { create: false });
    dbs.push(db);
    await restoreSnapshot(repo, pointId, { targetDatabase: db.url });
    for (const [table, where] of [
      ['weddings', 'wedding_id = 3'],
      ['guests', 'wedding_id = 3'],
      ['app.menu_choices', 'guest_id IN (SELECT guest_id FROM guests WHERE wedding_id = 3)'],
    ] as const) {
      const n = async (url: string) =>
        (await query<{ n: number }>(url, `SELECT count(*)::int AS n FROM ${table} WHERE ${where}`))[0]!.n;
      expect(await n(db.url), `${target} ${table}`).toBe(0);
      expect(await n(svc.config.sources.postgres.url)).toBeGreaterThan(0);
    }
    const [w4] = await query<{ n: number }>(
      db.url,
      'SELECT count(*)::int AS n FROM guests WHERE wedding_id = 4',
    );
    const [s4] = await query<{ n: number }>(
      svc.config.sources.postgres.url,
      'SELECT count(*)::int AS n FROM guests WHERE wedding_id = 4',
    );
    expect(w4!.n).toBe(s4!.n);
  }

  // the older point still verifies on both copies (its object list follows the rewritten key
  // bundles) and drills clean without the wedding
  for (const mode of ['full', 'drill'] as const) {
    const res = await request(app)
      .post('/api/backups/validation')
      .set(auth(admin))
      .send({ recoveryPointId: pointId, mode })
      .expect(202);
    const test = await waitFor(async () => {
      const t = await request(app)
        .get(`/api/backups/validation/${res.body.testId}`)
        .set(auth(admin))
        .expect(200);
      return ['passed', 'failed'].includes(t.body.status) && t.body;
    }, 120_000);
    expect(test, JSON.stringify(test.problems).slice(0, 800)).toMatchObject({
      status: 'passed',
      problems: [],
    });
  }

  // both requests were audited
  const { rows } = await svc.ctx.db.query(
    `SELECT status FROM audit_log WHERE path = '/api/compliance/erasure' AND method = 'POST' AND status IN (200, 202) ORDER BY id`,
  );
  expect(rows.map((r) => r.status)).toEqual([202, 200]);
}, 300_000);
