import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Worker } from 'bullmq';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Repository } from '../../src/engine/repo/repository.js';
import { JOBS, QUEUES } from '../../src/queues/names.js';
import { seedDatabase } from '../../src/seed/database.js';
import { LocalStorage } from '../../src/storage/local.js';
import { startWorkers, stopWorkers } from '../../src/workers/run.js';
import { createTestService, dbUrl, dropDatabase, waitFor, type TestService } from '../helpers/service.js';
import { expectOneWedding, varyWeddings, weddingDigests } from '../helpers/wedding-rows.js';
import { tempDirsForFile } from '../helpers/temp.js';

const tempDir = tempDirsForFile();

const run = promisify(execFile);
// the installed command: bin/wedvault sets the allocator and runs bin/wedvault.mjs
const BIN = path.resolve(import.meta.dirname, '..', '..', 'bin', 'wedvault');
let svc: TestService;
const extraDbs: string[] = [];

async function wedvault(args: string[]) {
  return run(BIN, args, { env: { ...process.env, ...svc.env }, maxBuffer: 64 << 20 });
}

async function counts(url: string): Promise<Record<string, number>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const out: Record<string, number> = {};
  for (const t of ['weddings', 'guests', 'payments', 'suppliers', 'contracts']) {
    out[t] = (await c.query(`SELECT count(*)::int AS n FROM ${t}`)).rows[0].n;
  }
  await c.end();
  return out;
}

beforeAll(async () => {
  svc = await createTestService();
  await seedDatabase(svc.config.sources.postgres.url, { scale: 0.002 });
  await varyWeddings(svc.config.sources.postgres.url);
  mkdirSync(path.join(svc.config.filesDir, 'weddings', '7'), { recursive: true });
  writeFileSync(path.join(svc.config.filesDir, 'weddings', '7', 'vows.txt'), 'I promise… ❤\n');
  writeFileSync(path.join(svc.config.filesDir, 'hero.jpg'), randomBytes(200_000));
}, 120_000);

afterAll(async () => {
  for (const d of extraDbs) await dropDatabase(d);
  await svc?.cleanup();
});

describe('wedvault CLI', () => {
  let pointId: string;
  /** Wedding 5 as the source held it at pointId's backup (later cases change the source). */
  let weddingFive: Record<string, string>;

  it('backs up database and files and prints the recovery point id', async () => {
    const { stdout } = await wedvault(['backup', '--type', 'full', '--json']);
    const out = JSON.parse(stdout);
    expect(out.recoveryPointId).toMatch(/^[0-9a-f]{32,64}$/);
    expect(out.recorded).toBe(true);
    pointId = out.recoveryPointId;
    weddingFive = await weddingDigests(svc.config.sources.postgres.url, '5');
    const plain = await wedvault(['backup', '--type', 'incremental']);
    expect(plain.stdout.trim()).toMatch(/^[0-9a-f]{32,64}$/);
    const snaps = JSON.parse((await wedvault(['snapshots', '--json'])).stdout);
    expect(snaps.map((s: { id: string }) => s.id)).toContain(pointId);
    const ls = (await wedvault(['ls', pointId])).stdout;
    expect(ls).toMatch(/table {2}public\.guests {2}\d+ rows/);
    expect(ls).toContain('weddings/7/vows.txt');
  }, 120_000);

  it('with change slots on, an incremental stores changed rows and the source keeps one slot', async () => {
    const source = svc.config.sources.postgres.url;
    const slots = async () => {
      const c = new pg.Client({ connectionString: source });
      await c.connect();
      const { rows } = await c.query<{ s: string }>(
        'SELECT slot_name AS s FROM pg_replication_slots WHERE database = current_database()',
      );
      await c.end();
      return rows.map((r) => r.s);
    };
    const on = { ...process.env, ...svc.env, WEDVAULT_CHANGE_SLOT: 'on' };
    const backup = async (type: string) =>
      JSON.parse(
        (await run(BIN, ['backup', '--type', type, '--components', 'database', '--json'], { env: on }))
          .stdout,
      ).recoveryPointId as string;
    await backup('full');
    const [first] = await slots();
    expect(first).toMatch(/^wedvault_/);
    const c = new pg.Client({ connectionString: source });
    await c.connect();
    await c.query(`UPDATE guests SET dietary = 'slot' WHERE guest_id % 20 = 0`);
    await c.end();
    const inc = await backup('incremental');
    const [second, ...more] = await slots();
    expect(more).toEqual([]);
    expect(second).not.toBe(first);
    const whole = `wv_test_cli_delta_${randomBytes(3).toString('hex')}`;
    extraDbs.push(whole);
    await wedvault(['restore', inc, '--target-database', dbUrl(whole)]);
    expect(await counts(dbUrl(whole))).toEqual(await counts(source));
    // slots off again: the next backup drops the last slot
    await wedvault(['backup', '--type', 'incremental', '--components', 'database']);
    expect(await slots()).toEqual([]);
  }, 120_000);

  it('restores the database, one wedding, and files', async () => {
    const whole = `wv_test_cli_whole_${randomBytes(3).toString('hex')}`;
    const one = `wv_test_cli_one_${randomBytes(3).toString('hex')}`;
    extraDbs.push(whole, one);
    const res = JSON.parse(
      (await wedvault(['restore', pointId, '--target-database', dbUrl(whole), '--json'])).stdout,
    );
    expect(res.target).toBe('local-primary');
    expect(await counts(dbUrl(whole))).toEqual(await counts(svc.config.sources.postgres.url));

    await wedvault(['restore', pointId, '--target-database', dbUrl(one), '--wedding', '5']);
    await expectOneWedding(dbUrl(one), '5', weddingFive);

    const dir = tempDir('wv-cli-files-');
    await wedvault(['restore', pointId, '--target-dir', dir]);
    for (const rel of ['weddings/7/vows.txt', 'hero.jpg']) {
      expect(
        readFileSync(path.join(dir, rel)).equals(readFileSync(path.join(svc.config.filesDir, rel))),
      ).toBe(true);
    }
  }, 120_000);

  it('checks a recovery point as the verify job does, and names a damaged pack', async () => {
    const ok = JSON.parse((await wedvault(['check', pointId, '--json'])).stdout);
    expect(ok).toMatchObject({ recoveryPointId: pointId, status: 'passed', problems: [] });

    const dir = path.join(svc.config.dataDir, 'targets', svc.config.primaryTarget);
    const repo = await Repository.open(new LocalStorage('primary', dir), svc.config.masterKey);
    const pack = (await repo.objectsForSnapshot(pointId)).find((o) => o.key.startsWith('data/'))!.key;
    const file = path.join(dir, pack);
    const orig = readFileSync(file);
    const bad = Buffer.from(orig);
    bad[bad.length >> 1]! ^= 0x10;
    writeFileSync(file, bad);
    try {
      // quick reads listings, metadata and the tree's record lists: it passes, or, when the flipped
      // byte lies in a record list it reads, names that pack; --full always reads the pack
      const quick = await wedvault(['check', pointId]).then(
        () => undefined,
        (e: { stdout: string; stderr: string }) => e,
      );
      if (quick) expect(quick.stdout + quick.stderr).toContain(pack);
      const err = await wedvault(['check', pointId, '--full']).then(
        () => undefined,
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
      expect(err?.code).toBe(1);
      expect(err?.stdout, err?.stderr).toContain(`${pointId}  failed`);
      expect(err?.stdout).toContain(`local-primary  ${pack}  corrupt`);
    } finally {
      writeFileSync(file, orig);
    }
    await expect(wedvault(['check', pointId, '--targets', 'nowhere'])).rejects.toMatchObject({ code: 64 });
  }, 120_000);

  it('refuses to overwrite a live database and says why', async () => {
    const err = await wedvault([
      'restore',
      pointId,
      '--target-database',
      svc.config.sources.postgres.url,
    ]).catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).not.toBe(0);
    expect((err as { stderr: string }).stderr).toMatch(/already holds tables.*--overwrite/);
  }, 60_000);

  it('restores through the restore queue and records the recovery', async () => {
    const workers: Worker[] = startWorkers(svc.ctx, { queues: ['restore'], concurrency: 1 });
    try {
      const recoveryId = randomUUID();
      const dir = tempDir('wv-queue-restore-');
      await svc.ctx.queues.queues[QUEUES.restore].add(
        JOBS.restore,
        { recoveryId, recoveryPointId: pointId, targetDir: dir },
        { priority: 1 },
      );
      const row = await waitFor(async () => {
        const { rows } = await svc.ctx.db.query('SELECT * FROM recoveries WHERE id = $1', [recoveryId]);
        return rows[0]?.state === 'completed' && rows[0];
      });
      expect(row.recovery_point_id).toBe(pointId);
      expect(readFileSync(path.join(dir, 'weddings/7/vows.txt'), 'utf8')).toBe('I promise… ❤\n');
    } finally {
      await stopWorkers(workers);
    }
  });
});

describe('wedvault restore when every copy fails', () => {
  it('names each copy with its own cause', async () => {
    // the primary's packs damaged throughout; the secondary never received a copy (the CLI does not replicate)
    const [primary, secondary] = svc.config.targets;
    const snapshots = JSON.parse((await wedvault(['snapshots', '--json'])).stdout) as {
      id: string;
      type: string;
    }[];
    // the first backup: database and files (later ones hold only the database)
    const snapshot = snapshots.find((x) => x.type === 'full');
    const root = (primary as { path: string }).path;
    const packs = readdirSync(path.join(root, 'data'), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => path.join(e.parentPath, e.name));
    const originals = packs.map((p) => readFileSync(p));
    try {
      packs.forEach((p, i) => {
        const bytes = Buffer.from(originals[i]!);
        // every few KiB, so each blob a restore reads is hit, whichever of the packs holds it
        for (let at = 0; at < bytes.length; at += 2048) bytes[at]! ^= 0xff;
        writeFileSync(p, bytes);
      });
      const dir = tempDir('wv-cli-failover-');
      const err = await wedvault(['restore', snapshot!.id, '--target-dir', dir]).catch(
        (e: { code: number; stderr: string }) => e,
      );
      expect((err as { code: number }).code).toBe(1);
      const stderr = (err as { stderr: string }).stderr;
      expect(stderr).toMatch(new RegExp(`${primary!.name}: [^;]*fails authentication`));
      expect(stderr).toMatch(new RegExp(`${secondary!.name}: [^;]*config not found`));
    } finally {
      packs.forEach((p, i) => writeFileSync(p, originals[i]!));
    }
  }, 120_000);
});
