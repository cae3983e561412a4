import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { Repository } from '../../src/engine/repo/repository.js';
import { LocalStorage } from '../../src/storage/local.js';
import { pseudoRandom, SMALL_CHUNKER, streamOf } from '../engine/repo/helpers.js';

const run = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '..', '..', 'bin', 'wedvault');
const dir = mkdtempSync(path.join(tmpdir(), 'wv-prune-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const masterKey = randomBytes(32);
const names = ['disk-a', 'disk-b', 'disk-empty'];
writeFileSync(
  path.join(dir, 'config.json'),
  JSON.stringify({ targets: names.map((name) => ({ type: 'local', name, path: path.join(dir, name) })) }),
);
const env = {
  ...process.env,
  WEDVAULT_CONFIG: path.join(dir, 'config.json'),
  WEDVAULT_MASTER_KEY: masterKey.toString('hex'),
  WEDVAULT_DATA_DIR: path.join(dir, 'data'),
  WEDVAULT_FILES_DIR: path.join(dir, 'files'),
  LOG_LEVEL: 'silent',
};

/** Two points on a target, the first forgotten: its own blobs are what a prune frees. */
async function twoPointsOneForgotten(target: string): Promise<string> {
  const repo = await Repository.init(new LocalStorage(target, path.join(dir, target)), masterKey, {
    chunker: SMALL_CHUNKER,
  });
  const ids: string[] = [];
  for (const seed of [1, 2]) {
    const w = repo.writer({ packSize: 20_000 });
    const ref = await w.write('wedding:1', streamOf(pseudoRandom(100_000, seed)));
    await w.flush();
    ids.push((await repo.saveSnapshot({ type: 'full', tree: { ref }, stats: w.stats })).id);
    await w.close();
  }
  await repo.forgetSnapshots([ids[0]!]);
  return ids[1]!;
}

it('wedvault prune: every target, a dry run first, progress on stderr, JSON on stdout', async () => {
  const kept: string[] = [];
  for (const t of names.slice(0, 2)) kept.push(await twoPointsOneForgotten(t));
  type Outcome = { target: string; skipped?: string; result?: { dryRun: boolean; bytesFreed: number } };
  const dry = await run(BIN, ['prune', '--dry-run', '--json'], { env });
  const planned = JSON.parse(dry.stdout) as Outcome[];
  expect(planned.map((o) => o.target)).toEqual(names);
  expect(planned[2]!.skipped).toBe('no repository');
  // a dry run changes nothing, and new packs are within the default grace period: nothing to free
  expect(planned[0]!.result).toMatchObject({ dryRun: true, bytesFreed: 0 });
  expect(dry.stderr).toContain('disk-a: mark');

  const young = await run(BIN, ['prune'], { env });
  expect(young.stdout).toMatch(/^disk-a: freed 0 bytes/m);
  expect(young.stdout).toMatch(/^disk-empty: skipped \(no repository\)/m);

  const plan = JSON.parse(
    (await run(BIN, ['prune', '--dry-run', '--grace', '0', '--json'], { env })).stdout,
  ) as Outcome[];
  const done = JSON.parse((await run(BIN, ['prune', '--grace', '0', '--json'], { env })).stdout) as Outcome[];
  for (const i of [0, 1]) {
    expect(done[i]!.result!.bytesFreed).toBeGreaterThan(0);
    expect(done[i]!.result!.bytesFreed).toBe(plan[i]!.result!.bytesFreed);
    const repo = await Repository.open(new LocalStorage(names[i]!, path.join(dir, names[i]!)), masterKey);
    expect(await repo.check({ mode: 'full' })).toEqual([]);
    expect((await repo.listSnapshots()).map((s) => s.id)).toEqual([kept[i]]);
  }
}, 60_000);
