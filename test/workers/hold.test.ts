// The source guard with a real source database and Redis: a scheduled full backup waits (moved to
// delayed, reason recorded) while a check the test controls reports pressure, an on-demand full
// backup runs meanwhile, and the scheduled one runs once the pressure is gone.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Worker } from 'bullmq';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDatabase } from '../../src/catalog/db.js';
import { getOperation } from '../../src/catalog/operations.js';
import { closeCeremonyPools } from '../../src/engine/postgres/ceremony.js';
import { requestBackup } from '../../src/producers/backups.js';
import { readLoadRecords } from '../../src/queues/load.js';
import { PRIORITY } from '../../src/queues/priority.js';
import { operationIdForJob } from '../../src/workers/backup.js';
import { startWorkers, stopWorkers } from '../../src/workers/run.js';
import { createTestService, waitFor, waitForOperation, type TestService } from '../helpers/service.js';

let svc: TestService;
let source: pg.Client;
let workers: Worker[] = [];

beforeAll(async () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'wv-hold-')), 'config.json');
  const guard = {
    checks: [{ name: 'busy_flag', sql: 'SELECT busy FROM guard_flag', max: 0 }],
    retrySeconds: 0.5,
    cacheSeconds: 0,
  };
  writeFileSync(file, JSON.stringify({ load: { guard } }));
  svc = await createTestService({ WEDVAULT_CONFIG: file });
  await ensureDatabase(svc.config.sources.postgres.url);
  source = new pg.Client({ connectionString: svc.config.sources.postgres.url });
  await source.connect();
  await source.query(`CREATE TABLE weddings (wedding_id text PRIMARY KEY, wedding_date date NOT NULL)`);
  await source.query(`INSERT INTO weddings VALUES ('w1', current_date + 3)`);
  await source.query(`CREATE TABLE guard_flag (busy int NOT NULL); INSERT INTO guard_flag VALUES (1)`);
});

afterAll(async () => {
  await stopWorkers(workers);
  await source?.end();
  await closeCeremonyPools();
  await svc?.cleanup();
});

it('holds a scheduled full backup while the source is under pressure, runs on-demand work, resumes after', async () => {
  const queue = svc.ctx.queues.queues.backup;
  const scheduled = await queue.add(
    'backup',
    { type: 'full', scheduleId: 'nightly-full', trigger: 'schedule' },
    { jobId: 'guard-scheduled', priority: PRIORITY.later },
  );
  workers = startWorkers(svc.ctx, { queues: ['backup'], concurrency: 2 });

  // held: back in delayed with the reason on the job, counted for /metrics, nothing recorded yet
  await waitFor(async () => (await queue.getJobLogs(scheduled.id!)).logs.length > 0 && true);
  const { logs } = await queue.getJobLogs(scheduled.id!);
  expect(logs[0]).toMatch(/deferred \(guard\).*busy_flag 1 > 0/);
  const records = await readLoadRecords(svc.ctx.queues.connection, svc.ctx.queues.prefix);
  expect(records.deferred).toContainEqual({ reason: 'guard', queue: 'backup', count: expect.any(Number) });
  expect(records.guard?.under).toBe(true);

  // on demand: runs at once, although it is heavy too and the guard still holds
  const asked = await requestBackup(svc.ctx, { type: 'full' });
  await waitForOperation(svc.ctx, asked.operationId, 60_000);
  expect(await getOperation(svc.ctx.db, operationIdForJob(scheduled.id!))).toBeUndefined();
  // tried again every half second, held each time
  await waitFor(async () => (await queue.getJobLogs(scheduled.id!)).count >= 3, 10_000);
  expect(await queue.getJobState(scheduled.id!)).not.toBe('completed');
  expect(await getOperation(svc.ctx.db, operationIdForJob(scheduled.id!))).toBeUndefined();

  // pressure gone: the scheduled backup runs
  await source.query(`UPDATE guard_flag SET busy = 0`);
  await waitForOperation(svc.ctx, operationIdForJob(scheduled.id!), 60_000);
  expect(await queue.getJobState(scheduled.id!)).toBe('completed');
}, 120_000);
