// Backpressure with real Redis: while the backup queue is deeper than its bound, a low-tier
// scheduled job is deferred (moved to delayed, never dropped) and the defer shows in /metrics and
// GET /api/targets; a near wedding's job and an on-demand one are not held; the deferred job is
// taken once the queue is shallow again.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'bullmq';
import request from 'supertest';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureAdminKey } from '../../src/bootstrap.js';
import { createApp } from '../../src/http/app.js';
import { createRedis } from '../../src/queues/connection.js';
import { PRIORITY } from '../../src/queues/priority.js';
import { readLoadRecords } from '../../src/queues/load.js';
import { admitUnderBackpressure, backpressureDefers, createHolds, deferJob } from '../../src/workers/hold.js';
import { createTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let manual: Worker;

beforeAll(async () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'wv-bp-')), 'config.json');
  writeFileSync(file, JSON.stringify({ load: { backpressure: { maxDepth: 5, deferSeconds: 60 } } }));
  svc = await createTestService({ WEDVAULT_CONFIG: file });
  await ensureAdminKey(svc.ctx);
  manual = new Worker('backup', null, {
    connection: createRedis(svc.config.redisUrl),
    prefix: svc.ctx.queues.prefix,
  });
});

afterAll(async () => {
  await manual?.close();
  await svc?.cleanup();
});

it('the decision: low tiers only, past the bound only, and off at 0', () => {
  const f = { depth: 6, maxDepth: 5, tier: 'later' as const, deferTiers: ['later', 'maintenance'] as const };
  expect(backpressureDefers(f)).toBe(true);
  expect(backpressureDefers({ ...f, depth: 5 })).toBe(false);
  expect(backpressureDefers({ ...f, tier: 'week' })).toBe(false);
  expect(backpressureDefers({ ...f, tier: undefined })).toBe(false); // aged: priority 0
  expect(backpressureDefers({ ...f, maxDepth: 0 })).toBe(false);
});

it('defers a low-tier scheduled job while the queue is deep, visibly, and takes it later', async () => {
  const queue = svc.ctx.queues.queues.backup;
  const data = { type: 'files', scheduleId: 'hourly-files', trigger: 'schedule' };
  await queue.add('backup', data, { jobId: 'near', priority: PRIORITY.week });
  await queue.add('backup', data, { jobId: 'far', priority: PRIORITY.later });
  await queue.add(
    'backup',
    { type: 'files', trigger: 'demand' },
    { jobId: 'asked', priority: PRIORITY.later },
  );
  // the depth: jobs that sort after all of these
  await queue.addBulk(
    Array.from({ length: 8 }, (_, i) => ({
      name: 'backup',
      data,
      opts: { jobId: `filler-${i}`, priority: 9 },
    })),
  );

  const holds = createHolds(svc.ctx);
  const seen: Record<string, string | undefined> = {};
  for (let i = 0; i < 3; i++) {
    const job = (await manual.getNextJob('tok'))!;
    const hold = await holds(job);
    seen[job.id!] = hold?.reason;
    if (hold) await expect(deferJob(svc.ctx, job, 'tok', hold)).resolves.toBeInstanceOf(Error);
    else await job.moveToCompleted('ok', 'tok', false);
  }
  expect(seen).toEqual({ near: undefined, far: 'backpressure', asked: undefined });
  expect(await queue.getJobState('far')).toBe('delayed');
  expect((await queue.getJobLogs('far')).logs[0]).toMatch(
    /deferred \(backpressure\).*holds 9 waiting jobs > 5/,
  );

  const app = createApp(svc.ctx);
  const auth = { Authorization: `Bearer ${svc.env.WEDVAULT_ADMIN_KEY}` };
  const metrics = (await request(app).get('/metrics').set(auth).expect(200)).text;
  expect(metrics).toContain('wedvault_jobs_deferred_total{queue="backup",reason="backpressure"} 1');
  expect(metrics).toContain('wedvault_backpressure_deferring{queue="backup"} 1');
  const { body } = await request(app).get('/api/targets').set(auth).expect(200);
  expect(body.load.deferred).toEqual([{ reason: 'backpressure', queue: 'backup', count: 1 }]);
  expect(body.load.backpressure.queues).toContainEqual({ queue: 'backup', depth: 8, deferring: true });
  expect(body.load.lastDeferred[0]).toMatchObject({ jobId: 'far', reason: 'backpressure' });
  expect(body.targets[0].limits).toEqual({ concurrency: 8, requestsPerSecond: 0, mbPerSecond: 0 });
  const schedules = (await request(app).get('/api/schedules').set(auth).expect(200)).body;
  expect(schedules.load.deferred).toEqual([{ reason: 'backpressure', queue: 'backup', count: 1 }]);

  // shallow again: the deferred job comes back and is taken
  for (let i = 0; i < 8; i++) await queue.remove(`filler-${i}`);
  await (await queue.getJob('far'))!.promote();
  const again = (await manual.getNextJob('tok2'))!;
  expect(again.id).toBe('far');
  expect(await createHolds(svc.ctx)(again)).toBeUndefined();
});

it('the planner leaves low-tier due backups for a later tick while the queue is deep, unless overdue', async () => {
  const queue = svc.ctx.queues.queues.backup;
  await queue.obliterate({ force: true });
  await queue.addBulk(
    Array.from({ length: 6 }, (_, i) => ({
      name: 'backup',
      data: {},
      opts: { jobId: `deep-${i}`, priority: 9 },
    })),
  );
  const now = Date.now();
  const due = (weddingId: string, tier: 'week' | 'later', dueMinutesAgo: number) => ({
    weddingId,
    component: 'files' as const,
    tier,
    dueAt: new Date(now - dueMinutesAgo * 60_000),
  });
  const admit = admitUnderBackpressure(svc.ctx, () => now);
  // later's aging bound by default: half of (RPO 1560 − cadence 1440) = 60 minutes
  const plan = [due('near', 'week', 0), due('far', 'later', 5), due('far-overdue', 'later', 61)];
  expect((await admit(plan)).map((d) => d.weddingId)).toEqual(['near', 'far-overdue']);
  const records = await readLoadRecords(svc.ctx.queues.connection, svc.ctx.queues.prefix);
  expect(records.deferred).toEqual([{ reason: 'backpressure', queue: 'backup', count: 2 }]);
  // shallow: everything is admitted
  await queue.obliterate({ force: true });
  expect(await admit(plan)).toHaveLength(3);
});
