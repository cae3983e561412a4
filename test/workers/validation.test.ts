import type { Worker } from 'bullmq';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureAdminKey } from '../../src/bootstrap.js';
import { createApp } from '../../src/http/app.js';
import { requestBackup } from '../../src/producers/backups.js';
import { seedDatabase } from '../../src/seed/database.js';
import { startWorkers, stopWorkers } from '../../src/workers/run.js';
import { createTestService, waitFor, waitForOperation, type TestService } from '../helpers/service.js';

let svc: TestService;
let app: Express;
let workers: Worker[] = [];

beforeAll(async () => {
  svc = await createTestService();
  await seedDatabase(svc.config.sources.postgres.url, { scale: 0.001 });
  await ensureAdminKey(svc.ctx);
  app = createApp(svc.ctx);
  workers = startWorkers(svc.ctx, { queues: ['backup', 'replicate', 'verify'], concurrency: 2 });
}, 60_000);

afterAll(async () => {
  await stopWorkers(workers);
  await svc?.cleanup();
});

const auth = () => ({ Authorization: `Bearer ${svc.env.WEDVAULT_ADMIN_KEY}` });

it('a full backup whose schema is new is drilled; POST /api/backups/validation runs each mode', async () => {
  const { operationId } = await requestBackup(svc.ctx, { type: 'full' });
  const op = await waitForOperation(svc.ctx, operationId, 60_000);
  expect(op.followUps.map((f) => f.jobId)).toContain(`verify.${op.recoveryPointId}.drill`);

  for (const mode of ['quick', 'full', 'drill'] as const) {
    const res = await request(app)
      .post('/api/backups/validation')
      .set(auth())
      .send({ recoveryPointId: op.recoveryPointId, mode })
      .expect(202);
    const test = await waitFor(async () => {
      const t = await request(app).get(`/api/backups/validation/${res.body.testId}`).set(auth()).expect(200);
      return ['passed', 'failed'].includes(t.body.status) && t.body;
    }, 60_000);
    expect(test).toMatchObject({ testId: res.body.testId, mode, status: 'passed', problems: [] });
    if (mode === 'drill') expect(test.rtoMs).toBeGreaterThan(0);
  }
  const bad = await request(app)
    .post('/api/backups/validation')
    .set(auth())
    .send({ recoveryPointId: 'x', mode: 'deep' });
  expect(bad.status).toBe(400);
  expect(bad.body.error.details[0].field).toBe('mode');
}, 120_000);
