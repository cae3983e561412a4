/**
 * The fault campaign as tests, on real worker processes and a Redis of the test's own: a job key
 * deleted mid-backup, Redis killed and restarted empty mid-backup, a worker killed mid-drill.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { getOperation, type Operation } from '../../src/catalog/operations.js';
import { requestBackup } from '../../src/producers/backups.js';
import { installSchedules } from '../../src/producers/schedules.js';
import { seedDatabase } from '../../src/seed/database.js';
import { exited, spawnWedvault } from '../helpers/processes.js';
import { startOwnRedis, type OwnRedis } from '../helpers/redis-server.js';
import { createTestService, waitFor, waitForOperation, type TestService } from '../helpers/service.js';

let redis: OwnRedis;
let svc: TestService;
let worker: ReturnType<typeof spawnWedvault>;
const children: ReturnType<typeof spawnWedvault>[] = [];
const SCHEDULE = {
  id: 'nightly-test',
  pattern: '0 2 * * *',
  tz: 'UTC',
  queue: 'backup' as const,
  data: { type: 'files' },
};

beforeAll(async () => {
  redis = await startOwnRedis();
  svc = await createTestService({
    REDIS_URL: redis.url,
    WEDVAULT_JOB_LOCK_MS: '2000',
    WEDVAULT_RECONCILE_MS: '1000',
  });
  await seedDatabase(svc.config.sources.postgres.url, { scale: 0.001 });
  addPhotos('first');
  await installSchedules(svc.ctx, [SCHEDULE]);
  worker = spawn(['--role', 'worker', '--concurrency', '1']);
}, 120_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await svc?.cleanup();
  await redis?.kill();
});

function spawn(args: string[]) {
  // warnings on: a stray rejection is logged as a BUG line, which the tests look for
  const child = spawnWedvault(args, { ...svc.env, LOG_LEVEL: 'warn' });
  children.push(child);
  return child;
}

/** Incompressible photos never backed up before: a backup (and a drill's restore) is surely still running when the fault hits. */
function addPhotos(tag: string): void {
  for (let d = 0; d < 4; d++) {
    const dir = path.join(svc.config.filesDir, `${tag}-album-${d}`);
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < 8; i++) writeFileSync(path.join(dir, `photo-${i}.jpg`), randomBytes(5 << 20));
  }
}

const alive = (c: ReturnType<typeof spawnWedvault>) => c.exitCode === null && c.signalCode === null;
/** Alive, and no promise went unhandled on the way (the process handler would have kept it alive). */
function healthy(c: ReturnType<typeof spawnWedvault>): void {
  const out = c.output.join('');
  expect(alive(c), out).toBe(true);
  expect(out).not.toContain('BUG:');
}

/** The operation's end: completed, or failed with a reason. Never left queued or running. */
async function ended(operationId: string, timeoutMs = 120_000): Promise<Operation> {
  return waitFor(
    async () => {
      const o = await getOperation(svc.ctx.db, operationId);
      return (o?.state === 'completed' || o?.state === 'failed') && o;
    },
    timeoutMs,
    200,
  );
}

const packsDir = () => path.join(svc.config.dataDir, 'targets', 'local-primary', 'data');
const packCount = () =>
  existsSync(packsDir())
    ? readdirSync(packsDir(), { recursive: true }).filter((f) => String(f).includes('/')).length
    : 0;

/** Running, and a new pack written: the backup has begun and is far from done. */
async function midBackup(operationId: string, packsBefore: number): Promise<void> {
  await waitFor(async () => (await getOperation(svc.ctx.db, operationId))?.state === 'running', 60_000, 20);
  await waitFor(async () => packCount() > packsBefore, 60_000, 20);
}

it('a job key deleted mid-backup: the worker lives, the operation ends, the next job is served', async () => {
  const before = packCount();
  const { operationId } = await requestBackup(svc.ctx, { type: 'files' });
  await midBackup(operationId, before);
  expect(await svc.ctx.queues.connection.del(`${svc.ctx.queues.prefix}:backup:backup.${operationId}`)).toBe(
    1,
  );

  const op = await ended(operationId);
  if (op.state === 'failed') expect(op.error?.message).toBeTruthy();
  healthy(worker);

  const next = await requestBackup(svc.ctx, { type: 'files' });
  await waitForOperation(svc.ctx, next.operationId, 120_000);
  healthy(worker);
}, 300_000);

it('Redis killed and restarted empty mid-backup: the operation ends, the worker serves the next job, schedulers are back', async () => {
  addPhotos('second');
  const before = packCount();
  const { operationId } = await requestBackup(svc.ctx, { type: 'files' });
  await midBackup(operationId, before);
  await redis.kill();
  expect((await getOperation(svc.ctx.db, operationId))?.state, 'the backup ended before the fault').toBe(
    'running',
  );
  await new Promise((r) => setTimeout(r, 1_000));
  await redis.start();

  const op = await ended(operationId);
  if (op.state === 'failed') expect(op.error?.message).toBeTruthy();
  healthy(worker);

  // the catalog remembered the schedule; Redis did not: the reconciler installs it again
  await waitFor(
    async () => {
      const schedulers = await svc.ctx.queues.queues.backup.getJobSchedulers();
      return schedulers.some((s) => s.key === SCHEDULE.id);
    },
    60_000,
    200,
  );

  const next = await requestBackup(svc.ctx, { type: 'files' });
  await waitForOperation(svc.ctx, next.operationId, 120_000);
  healthy(worker);
}, 300_000);

it('a worker killed mid-backup while Redis loses everything: the reconciler re-enqueues the operation, which completes once', async () => {
  addPhotos('third');
  const before = packCount();
  const { operationId } = await requestBackup(svc.ctx, { type: 'files' });
  await midBackup(operationId, before);
  worker.kill('SIGKILL');
  await exited(worker);
  await redis.kill();
  await redis.start();
  expect(await svc.ctx.queues.queues.backup.getJob(`backup.${operationId}`)).toBeUndefined();

  worker = spawn(['--role', 'worker', '--concurrency', '1']);
  const op = await waitForOperation(svc.ctx, operationId, 120_000);
  const { rows } = await svc.ctx.db.query(
    'SELECT o.resumes, o.job_id, count(p.id)::int AS points FROM backup_operations o LEFT JOIN recovery_points p ON p.operation_id = o.id WHERE o.id = $1 GROUP BY o.id',
    [operationId],
  );
  expect(rows[0]).toEqual({ resumes: 1, job_id: `backup.${operationId}`, points: 1 });
  expect(op.attempts).toBeGreaterThanOrEqual(2);
  healthy(worker);
}, 300_000);

it('a worker killed mid-drill: the reconciler fails its test and drops its scratch database and directory', async () => {
  // a full backup's new schema brings a drill, which this worker runs after the backup
  const { operationId } = await requestBackup(svc.ctx, { type: 'full' });
  await waitForOperation(svc.ctx, operationId, 120_000);
  const drill = await waitFor(
    async () => {
      const { rows } = await svc.ctx.db.query<{ id: string; scratch: { database: string; dir: string } }>(
        `SELECT id, scratch FROM backup_tests WHERE mode = 'drill' AND status = 'running' AND scratch IS NOT NULL`,
      );
      const t = rows[0];
      if (!t) return undefined;
      const db = await svc.ctx.db.query('SELECT 1 FROM pg_database WHERE datname = $1', [t.scratch.database]);
      // the database is restored and the photos are being written: mid-drill
      return (
        db.rowCount === 1 &&
        existsSync(t.scratch.dir) &&
        readdirSync(t.scratch.dir, { recursive: true }).length > 2 &&
        t
      );
    },
    120_000,
    20,
  );
  worker.kill('SIGKILL');
  await exited(worker);
  const { rows: before } = await svc.ctx.db.query('SELECT status FROM backup_tests WHERE id = $1', [
    drill.id,
  ]);
  expect(before[0].status, 'the drill finished before the kill: make it slower').toBe('running');

  // a worker that does not consume verify: only the reconciler can mend the drill
  spawn(['--role', 'worker', '--queues', 'backup,replicate', '--concurrency', '1']);
  const row = await waitFor(
    async () => {
      const { rows } = await svc.ctx.db.query(
        'SELECT status, scratch, problems FROM backup_tests WHERE id = $1',
        [drill.id],
      );
      return rows[0].status !== 'running' && rows[0].scratch === null && rows[0];
    },
    90_000,
    200,
  );
  expect(row.status).toBe('failed');
  expect(row.problems[0].kind).toBe('job_lost');
  const db = await svc.ctx.db.query('SELECT 1 FROM pg_database WHERE datname = $1', [drill.scratch.database]);
  expect(db.rowCount).toBe(0);
  expect(existsSync(drill.scratch.dir)).toBe(false);
}, 300_000);
