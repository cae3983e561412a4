import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Job, type Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../src/config/schema.js';
import { getRecoveryPoint, listReplicas } from '../../src/catalog/recovery-points.js';
import { restoreFromCopies } from '../../src/engine/failover.js';
import { evaluate321 } from '../../src/policy/rule321.js';
import { requestBackup } from '../../src/producers/backups.js';
import { jobIds } from '../../src/queues/names.js';
import { startWorkers, stopWorkers } from '../../src/workers/run.js';
import { startAzurite, startGcs, startS3, type Emulator } from '../helpers/emulators.js';
import { exited, spawnWedvault } from '../helpers/processes.js';
import { createTestService, waitFor, waitForOperation, type TestService } from '../helpers/service.js';
import { tempDirsForFile } from '../helpers/temp.js';

const tempDir = tempDirsForFile();

let s3: Emulator;
let gcs: Emulator;
let azure: Emulator;
let root: string;
const files = new Map<string, Buffer>();

beforeAll(async () => {
  [s3, gcs, azure] = await Promise.all([
    startS3({ name: 's3' }),
    startGcs({ name: 'gcs' }),
    startAzurite({ name: 'azure' }),
  ]);
  root = tempDir('wv-cloud-');
  mkdirSync(path.join(root, 'files', 'portfolio'), { recursive: true });
  for (let i = 0; i < 6; i++) files.set(`portfolio/photo-${i}.jpg`, randomBytes(3 << 20));
  files.set('contract.txt', Buffer.from('Ceremony 14:00, reception 18:00. Ünïcode ✓\n'.repeat(5000)));
  for (const [rel, bytes] of files) writeFileSync(path.join(root, 'files', rel), bytes);
}, 120_000);

afterAll(async () => {
  await Promise.all([s3, gcs, azure].map((e) => e?.stop()));
});

async function service(
  name: string,
  targets: TargetConfig[],
  extraEnv: Record<string, string> = {},
  extraConfig: Record<string, unknown> = {},
) {
  const config = path.join(root, `${name}.json`);
  const disk: TargetConfig = {
    name: 'disk',
    type: 'local',
    path: path.join(root, name, 'disk'),
    prefix: '',
    labels: { media: 'disk', location: 'on-prem', offsite: false },
    concurrency: 8,
    rateLimit: 0,
  };
  // each service writes under its own prefix of the shared emulators
  const withPrefix = targets.map((t) => ({ ...t, prefix: `${name}/` }));
  writeFileSync(config, JSON.stringify({ targets: [disk, ...withPrefix], ...extraConfig }));
  return createTestService({
    WEDVAULT_CONFIG: config,
    WEDVAULT_FILES_DIR: path.join(root, 'files'),
    WEDVAULT_JOB_ATTEMPTS: '2',
    WEDVAULT_JOB_BACKOFF_MS: '200',
    ...s3.env,
    ...gcs.env,
    ...azure.env,
    ...extraEnv,
  });
}

async function backupAndWait(svc: TestService) {
  const { operationId } = await requestBackup(svc.ctx, { type: 'files' });
  const op = await waitForOperation(svc.ctx, operationId, 60_000);
  const pointId = op.recoveryPointId!;
  await waitFor(async () => {
    const j = await Job.fromId(svc.ctx.queues.queues.verify, jobIds.verify(pointId, 'quick'));
    return !!j?.finishedOn;
  }, 90_000);
  return pointId;
}

async function expectRestored(dir: string) {
  for (const [rel, bytes] of files) expect(readFileSync(path.join(dir, rel)).equals(bytes)).toBe(true);
}

describe('replication to S3, GCS and Azure', () => {
  let svc: TestService;
  let workers: Worker[] = [];
  beforeAll(async () => {
    svc = await service('all', [s3.target, gcs.target, azure.target]);
    workers = startWorkers(svc.ctx, { queues: ['backup', 'replicate', 'verify'], concurrency: 2 });
  });
  afterAll(async () => {
    await stopWorkers(workers);
    await svc?.cleanup();
  });

  it('replicates every point, meets 3-2-1, and each copy restores byte-identical', async () => {
    const pointId = await backupAndWait(svc);
    const replicas = await listReplicas(svc.ctx.db, [pointId]);
    expect(replicas.map((r) => [r.target, r.state, r.error])).toEqual([
      ['azure', 'verified', null],
      ['disk', 'verified', null],
      ['gcs', 'verified', null],
      ['s3', 'verified', null],
    ]);
    const labels = new Map(svc.config.targets.map((t) => [t.name, t.labels]));
    expect(evaluate321(replicas, labels)).toMatchObject({ meets321: true, copies: 4, offsite: 3 });

    for (const target of ['s3', 'gcs', 'azure']) {
      const out = tempDir(`wv-restore-${target}-`);
      const r = await restoreFromCopies(
        [{ target, storage: svc.ctx.storage(target) }],
        svc.config.masterKey,
        pointId,
        {
          targetDir: out,
        },
      );
      expect(r).toMatchObject({ target, failures: [] });
      await expectRestored(out);
    }
  });
});

describe('a replicate worker killed mid-copy', () => {
  let svc: TestService;
  let workers: Worker[] = [];
  let child: ReturnType<typeof spawnWedvault> | undefined;
  beforeAll(async () => {
    svc = await service('crash', [s3.target], { WEDVAULT_JOB_LOCK_MS: '2000' });
    workers = startWorkers(svc.ctx, { queues: ['backup', 'verify'], concurrency: 1, lockDurationMs: 2000 });
  });
  afterAll(async () => {
    // a failed case must not leave its worker process copying into a store that is going away
    if (child) {
      child.kill('SIGKILL');
      await exited(child);
    }
    await stopWorkers(workers);
    await svc?.cleanup();
  });

  it('resumes without re-uploading what is already there', async () => {
    // only a child process copies, with a small per-target concurrency so the kill lands mid-way
    child = spawnWedvault(['--role', 'worker', '--queues', 'replicate', '--concurrency', '1'], svc.env);
    const { operationId } = await requestBackup(svc.ctx, { type: 'files' });
    const op = await waitForOperation(svc.ctx, operationId, 60_000);
    const point = (await getRecoveryPoint(svc.ctx.db, op.recoveryPointId!))!;
    const dest = svc.ctx.storage('s3');
    // whole objects only: one the kill cut short may be listed, and is rightly copied again
    const countPresent = async () => {
      const sizes = new Map<string, number>();
      for await (const o of dest.list('')) sizes.set(o.key, o.size);
      return point.objects.filter((o) => sizes.get(o.key) === o.size).length;
    };
    await waitFor(async () => (await countPresent()) >= 1, 60_000, 10);
    child.kill('SIGKILL');
    await exited(child);
    child = undefined;
    const before = await countPresent();
    expect(before).toBeLessThan(point.objects.length);

    workers.push(...startWorkers(svc.ctx, { queues: ['replicate'], concurrency: 1, lockDurationMs: 2000 }));
    const job = await waitFor(async () => {
      const j = await Job.fromId(svc.ctx.queues.queues.replicate, jobIds.replicate(point.id, 's3'));
      return j?.finishedOn ? j : undefined;
    }, 60_000);
    expect(job.returnvalue.skippedObjects).toBeGreaterThanOrEqual(before);
    expect(job.returnvalue.copiedObjects).toBe(point.objects.length - job.returnvalue.skippedObjects);
    expect(await countPresent()).toBe(point.objects.length);
  }, 120_000);
});

describe('one store down', () => {
  let svc: TestService;
  let workers: Worker[] = [];
  let azure2: Emulator;
  beforeAll(async () => {
    azure2 = await startAzurite({ name: 'azure' });
    svc = await service('down', [s3.target, azure2.target], azure2.env);
    workers = startWorkers(svc.ctx, { queues: ['backup', 'replicate', 'verify'], concurrency: 2 });
  });
  afterAll(async () => {
    await stopWorkers(workers);
    await svc?.cleanup();
    await azure2?.stop();
  });

  it('reports the point as missing 3-2-1 with the reason, and restores from the other copies', async () => {
    const healthy = await backupAndWait(svc);
    await azure2.stop();
    const pointId = await backupAndWait(svc);
    const replicas = await listReplicas(svc.ctx.db, [pointId]);
    expect(replicas.find((r) => r.target === 'azure')?.state).toBe('failed');
    const labels = new Map(svc.config.targets.map((t) => [t.name, t.labels]));
    const rule = evaluate321(replicas, labels);
    expect(rule.meets321).toBe(false);
    expect(rule.reason321).toBe('2 copies of 3; not verified on: azure');

    // the earlier point had all three; azure is first in line but down, so restore moves on
    for (const id of [healthy, pointId]) {
      const out = tempDir('wv-restore-failover-');
      const copies = ['azure', 's3', 'disk'].map((target) => ({ target, storage: svc.ctx.storage(target) }));
      const r = await restoreFromCopies(copies, svc.config.masterKey, id, { targetDir: out });
      expect(r.target).toBe('s3');
      expect(r.failures.map((f) => f.target)).toEqual(['azure']);
      await expectRestored(out);
    }
    const health = await svc.ctx.db.query(`SELECT healthy FROM targets WHERE name = 'azure'`);
    expect(health.rows[0].healthy).toBe(false);
  }, 180_000);
});

describe('a bucket prefix as the files source', () => {
  let svc: TestService;
  let workers: Worker[] = [];
  beforeAll(async () => {
    svc = await service(
      'bucket',
      [s3.target],
      {},
      {
        sources: { files: [{ name: 'portfolio', target: 's3', prefix: 'incoming/', scopes: [] }] },
      },
    );
    workers = startWorkers(svc.ctx, { queues: ['backup'], concurrency: 1 });
  });
  afterAll(async () => {
    await stopWorkers(workers);
    await svc?.cleanup();
  });

  it('backs up the objects under the prefix and restores them byte-identical', async () => {
    const bucket = svc.ctx.storage('s3');
    const photos = new Map([
      ['incoming/suppliers/3/cake.jpg', randomBytes(300_000)],
      ['incoming/notes.txt', Buffer.from('bring the rings')],
    ]);
    for (const [key, bytes] of photos) await bucket.put(key, bytes);
    const { operationId } = await requestBackup(svc.ctx, { type: 'files' });
    const op = await waitForOperation(svc.ctx, operationId, 60_000);
    const out = tempDir('wv-bucket-restore-');
    await restoreFromCopies(
      [{ target: 'disk', storage: svc.ctx.storage('disk') }],
      svc.config.masterKey,
      op.recoveryPointId!,
      {
        targetDir: out,
      },
    );
    for (const [key, bytes] of photos) {
      expect(readFileSync(path.join(out, key.slice('incoming/'.length))).equals(bytes)).toBe(true);
    }
  });
});
