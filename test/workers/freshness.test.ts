/** 3-2-1 freshness: a target that lost its data stops counting for every point at once; one bad object does not. */
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Worker } from 'bullmq';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { listReplicas } from '../../src/catalog/recovery-points.js';
import { getTest } from '../../src/catalog/backup-tests.js';
import { evaluate321 } from '../../src/policy/rule321.js';
import { requestBackup } from '../../src/producers/backups.js';
import { startWorkers, stopWorkers } from '../../src/workers/run.js';
import { createTestService, waitFor, waitForOperation, type TestService } from '../helpers/service.js';

let svc: TestService;
let workers: Worker[] = [];
const points: string[] = [];
const target = (name: string, ...rest: string[]) => path.join(svc.config.dataDir, 'targets', name, ...rest);

beforeAll(async () => {
  svc = await createTestService();
  workers = startWorkers(svc.ctx, { queues: ['backup', 'replicate', 'verify'], concurrency: 2 });
  for (let n = 0; n < 2; n++) {
    mkdirSync(path.join(svc.config.filesDir, `album-${n}`), { recursive: true });
    writeFileSync(path.join(svc.config.filesDir, `album-${n}`, 'photo.jpg'), randomBytes(300_000));
    const { operationId } = await requestBackup(svc.ctx, { type: 'files' });
    const op = await waitForOperation(svc.ctx, operationId, 60_000);
    points.push(op.recoveryPointId!);
    await waitFor(async () => (await states(op.recoveryPointId!)).every((s) => s === 'verified'), 60_000);
  }
}, 180_000);

afterAll(async () => {
  await stopWorkers(workers);
  await svc?.cleanup();
});

async function states(pointId: string): Promise<string[]> {
  return (await listReplicas(svc.ctx.db, [pointId])).map((r) => r.state);
}
async function secondary(pointId: string): Promise<string> {
  return (await listReplicas(svc.ctx.db, [pointId])).find((r) => r.target === 'local-secondary')!.state;
}
async function copies(pointId: string): Promise<number> {
  const labels = new Map(svc.config.targets.map((t) => [t.name, t.labels]));
  return evaluate321(await listReplicas(svc.ctx.db, [pointId]), labels).copies;
}

let verifications = 0;
async function verify(pointId: string, mode: 'quick' | 'full'): Promise<void> {
  const jobId = `freshness-${++verifications}`;
  await svc.ctx.queues.queues.verify.add('verify', { recoveryPointId: pointId, mode }, { jobId });
  await waitFor(async () => {
    const { rows } = await svc.ctx.db.query(
      `SELECT id FROM backup_tests WHERE job_id = $1 AND status IN ('passed', 'failed')`,
      [jobId],
    );
    return rows[0] && (await getTest(svc.ctx.db, rows[0].id));
  }, 60_000);
}

it('one damaged object of one point fails that point only: the other keeps its verified copy', async () => {
  const [older, newer] = points as [string, string];
  const objects = async (id: string) =>
    (await svc.ctx.db.query('SELECT objects FROM recovery_points WHERE id = $1', [id])).rows[0].objects as {
      key: string;
    }[];
  const olderKeys = new Set((await objects(older)).map((o) => o.key));
  // a pack only the newer point needs (the photo added after the older backup)
  const pack = (await objects(newer)).find((o) => o.key.startsWith('data/') && !olderKeys.has(o.key))!.key;
  truncateSync(target('local-secondary', pack), 10);

  await verify(newer, 'quick');
  expect(await secondary(newer)).toBe('failed');
  expect(await secondary(older)).toBe('verified');
  expect(await copies(older)).toBe(2);

  await verify(newer, 'full'); // repairs the pack from the primary
  expect(await secondary(newer)).toBe('verified');
}, 120_000);

it('a target that lost its data turns every point there unverified at once; the next verify re-establishes the sound ones', async () => {
  const [older, newer] = points as [string, string];
  // the repository's config object is gone: the target as a whole has lost its data
  copyFileSync(target('local-secondary', 'config'), path.join(svc.dir, 'config.saved'));
  rmSync(target('local-secondary', 'config'));

  await verify(newer, 'quick');
  expect(await secondary(newer)).toBe('failed');
  // never checked, yet no longer counted
  expect(await secondary(older)).toBe('unverified');
  expect(await copies(older)).toBe(1);
  const labels = new Map(svc.config.targets.map((t) => [t.name, t.labels]));
  expect(evaluate321(await listReplicas(svc.ctx.db, [older]), labels).missing).toContain('local-secondary');

  // the object comes back (an operator restores it, or a full verify repairs it): verify re-establishes
  copyFileSync(path.join(svc.dir, 'config.saved'), target('local-secondary', 'config'));
  await verify(older, 'quick');
  expect(await secondary(older)).toBe('verified');
  expect(await copies(older)).toBe(2);
  // a repairing verify also mends the target itself
  rmSync(target('local-secondary', 'config'));
  await verify(newer, 'full');
  expect(await secondary(newer)).toBe('verified');
  expect(await secondary(older)).toBe('unverified');
  expect(readdirSync(target('local-secondary'))).toContain('config');
}, 120_000);
