/** Verification figures: full read-back MB/s beside `restic check --read-data`, and quick checks per 10,000 objects. */
import { Repository } from '../src/engine/repo/repository.js';
import { validatePoint } from '../src/engine/validate/validate.js';
import { LocalStorage } from '../src/storage/local.js';
import { measure } from './measure.js';

export interface VerifyFigures {
  case: string;
  ours: { wall_s: number; mb_per_s: number; bytes: number };
  peer: { tool: string; wall_s: number; mb_per_s: number };
  ratio: number;
  quick: { objects: number; wall_s: number; s_per_10k_objects: number };
}

export async function benchVerify(
  repoDir: string,
  masterKey: Buffer,
  resticEnv: Record<string, string>,
): Promise<VerifyFigures> {
  const storage = new LocalStorage('bench', repoDir);
  const repo = await Repository.open(storage, masterKey);
  let bytes = 0;
  for await (const o of storage.list('data/')) bytes += o.size;
  const t0 = performance.now();
  const problems = await repo.check({ mode: 'full' });
  const wall = (performance.now() - t0) / 1000;
  if (problems.length) throw new Error(`full check found problems: ${JSON.stringify(problems.slice(0, 3))}`);
  const restic = await measure('restic', ['check', '--read-data', '-q'], resticEnv);

  const snap = (await repo.listSnapshots()).at(-1)!;
  const objects = await repo.objectsForSnapshot(snap.id);
  const t1 = performance.now();
  const quick = await validatePoint({
    snapshotId: snap.id,
    expected: objects,
    copies: [{ target: 'bench', storage }],
    masterKey,
    mode: 'quick',
  });
  const quickWall = (performance.now() - t1) / 1000;
  if (quick.status !== 'passed') throw new Error('quick verification found problems');
  return {
    case: 'verify-full-vs-restic-check',
    ours: { wall_s: Math.round(wall * 100) / 100, mb_per_s: Math.round(bytes / 1e6 / wall), bytes },
    peer: {
      tool: 'restic check --read-data',
      wall_s: restic.wall_s,
      mb_per_s: Math.round(bytes / 1e6 / restic.wall_s),
    },
    ratio: Math.round((wall / restic.wall_s) * 100) / 100,
    quick: {
      objects: objects.length,
      wall_s: Math.round(quickWall * 1000) / 1000,
      s_per_10k_objects: Math.round((quickWall / objects.length) * 10_000 * 1000) / 1000,
    },
  };
}
