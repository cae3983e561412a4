import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestBackup } from '../../src/producers/backups.js';
import { seedDatabase } from '../../src/seed/database.js';
import { startWorkers, stopWorkers } from '../../src/workers/run.js';
import { createTestService, waitForOperation, type TestService } from '../helpers/service.js';

const run = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '..', '..', 'bin', 'wedvault');
let svc: TestService;
let workers: Worker[];

async function wedvault(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(BIN, args, { env: { ...process.env, ...svc.env } });
    return { code: 0, ...r };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  svc = await createTestService();
  await seedDatabase(svc.config.sources.postgres.url, { scale: 0.001 });
  workers = startWorkers(svc.ctx, { queues: ['backup'], concurrency: 1 });
  const { operationId } = await requestBackup(svc.ctx, { type: 'full', components: ['database'] });
  await waitForOperation(svc.ctx, operationId, 60_000);
}, 120_000);

afterAll(async () => {
  await stopWorkers(workers ?? []);
  await svc?.cleanup();
});

describe('wedvault restore --to-time, dr and catalog rebuild', () => {
  it('refuses a bad --to-time request before touching anything, naming the option', async () => {
    const url = svc.config.sources.postgres.url;
    const noZone = await wedvault(['restore', '--to-time', '2026-01-01T10:00:00', '--target-database', url]);
    expect(noZone.code).toBe(64);
    expect(noZone.stderr).toMatch(/--to-time needs an ISO 8601 time with a zone or Z/);
    const merge = await wedvault([
      'restore',
      '--to-time',
      '2026-01-01T10:00:00+01:00',
      '--target-database',
      url,
      '--merge',
    ]);
    expect(merge.code).toBe(64);
    expect(merge.stderr).toMatch(/--wedding: /);
    const noId = await wedvault(['restore', '--target-database', url]);
    expect(noId.code).toBe(64);
    expect(noId.stderr).toMatch(/needs a <recoveryPointId> \(or --to-time/);
  }, 30_000);

  it('prints a scenario’s plan: steps, copies, RTO estimate', async () => {
    const r = await wedvault(['dr', 'plan', 'primary-target-lost']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/1\. read from the surviving copies, in order: local-secondary/);
    expect(r.stdout).toMatch(/copies: local-secondary/);
    expect(r.stdout).toMatch(/RTO estimate: unknown \(no drill of primary-target-lost yet/);
    const bad = await wedvault(['dr', 'plan', 'meteor']);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toMatch(/scenario: one of database-lost/);
  }, 30_000);

  it('rebuilds a wiped catalog from the repositories', async () => {
    const before = (await svc.ctx.db.query(`SELECT id, checksum, objects FROM recovery_points`)).rows;
    await svc.ctx.db.query(
      `DELETE FROM backed_up_weddings; DELETE FROM replicas; DELETE FROM recovery_points`,
    );
    const r = await wedvault(['catalog', 'rebuild', '--json']);
    expect(r.code).toBe(0);
    // the secondary never got a copy (no replication here): any one readable copy suffices
    expect(JSON.parse(r.stdout)).toMatchObject({
      points: 1,
      seen: 1,
      unreadable: [{ target: 'local-secondary' }],
    });
    expect((await svc.ctx.db.query(`SELECT id, checksum, objects FROM recovery_points`)).rows).toEqual(
      before,
    );
  }, 30_000);
});
