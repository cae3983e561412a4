import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Job, type Worker } from 'bullmq';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { getRecoveryPoint, listReplicas } from '../../src/catalog/recovery-points.js';
import { requestBackup } from '../../src/producers/backups.js';
import { jobIds } from '../../src/queues/names.js';
import { getBuffer } from '../../src/storage/types.js';
import { startWorkers, stopWorkers } from '../../src/workers/run.js';
import { createTestService, waitFor, waitForOperation, type TestService } from '../helpers/service.js';

let svc: TestService;
let workers: Worker[];

beforeAll(async () => {
  const dir = path.join((await import('node:os')).tmpdir(), `wv-flow-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  const config = path.join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      targets: ['a', 'b', 'c'].map((n) => ({ name: `disk-${n}`, type: 'local', path: path.join(dir, n) })),
    }),
  );
  svc = await createTestService({ WEDVAULT_CONFIG: config, WEDVAULT_FILES_DIR: path.join(dir, 'files') });
  mkdirSync(path.join(svc.config.filesDir, 'photos'), { recursive: true });
  writeFileSync(path.join(svc.config.filesDir, 'photos', 'first-dance.jpg'), randomBytes(3 << 20));
  writeFileSync(path.join(svc.config.filesDir, 'seating.csv'), 'table,guest\n1,Zoë\n');
  workers = startWorkers(svc.ctx, { queues: ['backup', 'replicate', 'verify'], concurrency: 2 });
});

afterAll(async () => {
  await stopWorkers(workers ?? []);
  await svc?.cleanup();
});

it('a finished backup leads to one replicate job per other target, then a verify job', async () => {
  const { operationId } = await requestBackup(svc.ctx, { type: 'files' });
  const op = await waitForOperation(svc.ctx, operationId);
  const pointId = op.recoveryPointId!;
  expect(op.followUps).toEqual([
    { queue: 'replicate', jobId: jobIds.replicate(pointId, 'disk-b'), target: 'disk-b' },
    { queue: 'replicate', jobId: jobIds.replicate(pointId, 'disk-c'), target: 'disk-c' },
    { queue: 'verify', jobId: jobIds.verify(pointId, 'quick') },
  ]);

  // verify waits for its replicate children and runs last
  const verify = await waitFor(async () => {
    const j = await Job.fromId(svc.ctx.queues.queues.verify, jobIds.verify(pointId, 'quick'));
    return j?.finishedOn ? j : undefined;
  });
  for (const target of ['disk-b', 'disk-c']) {
    const rep = await Job.fromId(svc.ctx.queues.queues.replicate, jobIds.replicate(pointId, target));
    expect(rep?.finishedOn).toBeLessThanOrEqual(verify.processedOn!);
    expect(rep?.returnvalue.copiedObjects).toBeGreaterThan(0);
  }
  expect(verify.returnvalue).toEqual({ status: 'passed', problems: [] });

  const point = await getRecoveryPoint(svc.ctx.db, pointId);
  expect(point?.checksum).toMatch(/^[0-9a-f]{64}$/);
  expect(point?.objects.length).toBeGreaterThan(2);
  const replicas = await listReplicas(svc.ctx.db, [pointId]);
  expect(replicas.map((r) => [r.target, r.state, r.checksum])).toEqual([
    ['disk-a', 'verified', point!.checksum],
    ['disk-b', 'verified', point!.checksum],
    ['disk-c', 'verified', point!.checksum],
  ]);
  // every object of the point is byte-identical on every target
  for (const o of point!.objects) {
    const original = await getBuffer(svc.ctx.storage('disk-a'), o.key);
    expect(original.length).toBe(o.size);
    for (const t of ['disk-b', 'disk-c'])
      expect((await getBuffer(svc.ctx.storage(t), o.key)).equals(original)).toBe(true);
  }
});
