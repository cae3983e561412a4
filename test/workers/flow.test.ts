import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Job, type Worker } from 'bullmq';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureAdminKey } from '../../src/bootstrap.js';
import { createApp } from '../../src/http/app.js';
import { getRecoveryPoint, listReplicas } from '../../src/catalog/recovery-points.js';
import { requestBackup } from '../../src/producers/backups.js';
import { jobIds } from '../../src/queues/names.js';
import { getBuffer } from '../../src/storage/types.js';
import { startWorkers, stopWorkers } from '../../src/workers/run.js';
import { seeded } from '../helpers/seeded.js';
import { createTestService, waitFor, waitForOperation, type TestService } from '../helpers/service.js';

let svc: TestService;
let workers: Worker[];
let app: Express;
let dir: string;

beforeAll(async () => {
  dir = path.join((await import('node:os')).tmpdir(), `wv-flow-${randomBytes(4).toString('hex')}`);
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
  await ensureAdminKey(svc.ctx);
  app = createApp(svc.ctx);
});

afterAll(async () => {
  await stopWorkers(workers ?? []);
  await svc?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
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

/** Runs a verification through the API, as an operator would, and waits for its result. */
async function verify(recoveryPointId: string, mode: 'quick' | 'full') {
  const auth = { Authorization: `Bearer ${svc.env.WEDVAULT_ADMIN_KEY}` };
  const res = await request(app)
    .post('/api/backups/validation')
    .set(auth)
    .send({ recoveryPointId, mode })
    .expect(202);
  return waitFor(async () => {
    const t = await request(app).get(`/api/backups/validation/${res.body.testId}`).set(auth).expect(200);
    return ['passed', 'failed'].includes(t.body.status) && t.body;
  }, 60_000);
}

it('a corrupt replica is marked by verification and repaired from a healthy copy', async () => {
  const rng = seeded('verify flow');
  writeFileSync(path.join(svc.config.filesDir, 'photos', 'speeches.jpg'), randomBytes(2 << 20));
  const { operationId } = await requestBackup(svc.ctx, { type: 'files' });
  const pointId = (await waitForOperation(svc.ctx, operationId)).recoveryPointId!;
  await waitFor(async () => {
    const j = await Job.fromId(svc.ctx.queues.queues.verify, jobIds.verify(pointId, 'quick'));
    return j?.finishedOn ? j : undefined;
  });
  const point = (await getRecoveryPoint(svc.ctx.db, pointId))!;
  const state = async () =>
    (await listReplicas(svc.ctx.db, [pointId])).map((r) => [r.target, r.state] as [string, string]);
  expect(await state()).toEqual([
    ['disk-a', 'verified'],
    ['disk-b', 'verified'],
    ['disk-c', 'verified'],
  ]);

  // one pack (only a full check reads packs) and one object a quick check reads, on one replica
  const of = (...prefixes: string[]) =>
    point.objects.filter((o) => prefixes.some((p) => o.key.startsWith(p))).map((o) => o.key);
  const pack = rng.pick(of('data/'));
  const meta = rng.pick(of('index/', 'snapshots/'));
  const victim = svc.ctx.storage('disk-b');
  for (const key of [pack, meta]) {
    const b = await getBuffer(victim, key);
    b[rng.int(b.length)]! ^= 1 << rng.int(8);
    await victim.put(key, b);
  }

  const quick = await verify(pointId, 'quick');
  expect(quick.status).toBe('failed');
  expect(quick.problems.map((p: { target: string; object: string }) => [p.target, p.object])).toEqual([
    ['disk-b', meta],
  ]);
  expect(await state()).toEqual([
    ['disk-a', 'verified'],
    ['disk-b', 'failed'],
    ['disk-c', 'verified'],
  ]);
  expect((await listReplicas(svc.ctx.db, [pointId])).find((r) => r.target === 'disk-b')!.error).toContain(
    meta,
  );
  expect((await getRecoveryPoint(svc.ctx.db, pointId))!.healthy).toBe(false);

  const full = await verify(pointId, 'full');
  expect(full.status).toBe('passed');
  const mended = full.problems
    .map((p: { target: string; object: string; repaired: boolean }) => [p.target, p.object, p.repaired])
    .sort();
  expect(mended).toEqual(
    [
      ['disk-b', meta, true],
      ['disk-b', pack, true],
    ].sort(),
  );
  expect(await state()).toEqual([
    ['disk-a', 'verified'],
    ['disk-b', 'verified'],
    ['disk-c', 'verified'],
  ]);
  expect((await getRecoveryPoint(svc.ctx.db, pointId))!.healthy).toBe(true);
  for (const key of [pack, meta])
    expect((await getBuffer(victim, key)).equals(await getBuffer(svc.ctx.storage('disk-a'), key)), key).toBe(
      true,
    );
  // and a check after the repair finds nothing
  expect(await verify(pointId, 'full')).toMatchObject({ status: 'passed', problems: [] });
}, 120_000);
