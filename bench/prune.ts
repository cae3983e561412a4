/**
 * Prune figures: the database repository after forgetting its older half of points, pruned by
 * `wedvault prune`, beside `restic forget --prune` of a restic repository holding two dumps of the
 * same database taken 1% of rows apart. Each side runs on a copy; wall time, peak RSS, bytes freed.
 */
import { cpSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Repository } from '../src/engine/repo/repository.js';
import { LocalStorage } from '../src/storage/local.js';
import { measure, sh, type Measured } from './measure.js';

export interface PruneSide {
  tool: string;
  wall_s: number;
  cpu_s: number;
  peak_rss_mb: number;
  stored_before: number;
  bytes_freed: number;
}

export interface PruneFigures {
  case: string;
  ours: PruneSide & { points_forgotten: number; packs_deleted: number; packs_repacked: number };
  peer: PruneSide;
  ratio: number;
}

export interface PruneBenchInput {
  /** The database bench's WEDVAULT_DATA_DIR (its repository is under targets/local-primary). */
  dataDir: string;
  /** Scratch space: both copies live here and are removed after. */
  work: string;
  masterKey: Buffer;
  sourceUrl: string;
  /** Runs `wedvault <args>` with the bench's environment for a data directory. */
  wedvault: (args: string[], dataDir: string) => Promise<Measured>;
}

async function du(p: string): Promise<number> {
  return Number((await sh(`du -sb ${JSON.stringify(p)} | cut -f1`)).stdout.trim());
}

export async function benchPrune(input: PruneBenchInput): Promise<PruneFigures> {
  const ours = await pruneOurs(input);
  const peer = await pruneRestic(input);
  return {
    case: 'prune-half-vs-restic-forget-prune',
    ours,
    peer,
    ratio: Math.round((ours.wall_s / peer.wall_s) * 100) / 100,
  };
}

async function pruneOurs(input: PruneBenchInput): Promise<PruneFigures['ours']> {
  const dataDir = path.join(input.work, 'prune-ours');
  rmSync(dataDir, { recursive: true, force: true });
  // the primary only: the CLI prunes every configured target, and finds no repository on the others
  const repoDir = path.join(dataDir, 'targets', 'local-primary');
  cpSync(path.join(input.dataDir, 'targets', 'local-primary'), repoDir, { recursive: true });
  const repo = await Repository.open(new LocalStorage('bench', repoDir), input.masterKey);
  const points = await repo.listSnapshots();
  const forgotten = points.slice(0, Math.floor(points.length / 2)).map((p) => p.id);
  await repo.forgetSnapshots(forgotten);
  const before = await du(repoDir);
  await sh('sync');
  // the copy's packs are minutes old: no grace period, as a prune a day after the backups would see
  const m = await input.wedvault(['prune', '--grace', '0', '--json'], dataDir);
  const outcomes = JSON.parse(m.stdout) as { target: string; result?: Record<string, number> }[];
  const result = outcomes.find((o) => o.target === 'local-primary')!.result!;
  const after = await du(repoDir);
  const problems = await (await Repository.open(new LocalStorage('bench', repoDir), input.masterKey)).check();
  if (problems.length > 0) throw new Error(`check after prune: ${JSON.stringify(problems.slice(0, 3))}`);
  rmSync(dataDir, { recursive: true, force: true });
  return {
    tool: 'wedvault prune',
    wall_s: m.wall_s,
    cpu_s: m.cpu_s,
    peak_rss_mb: m.peak_rss_mb,
    stored_before: before,
    bytes_freed: before - after,
    points_forgotten: forgotten.length,
    packs_deleted: result.packsDeleted!,
    packs_repacked: result.packsRepacked!,
  };
}

async function pruneRestic(input: PruneBenchInput): Promise<PruneSide> {
  const repo = path.join(input.work, 'prune-restic');
  const dumps = path.join(input.work, 'prune-dumps');
  const env = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: 'bench' };
  rmSync(repo, { recursive: true, force: true });
  rmSync(dumps, { recursive: true, force: true });
  await sh(`mkdir -p ${dumps} && restic init -q`, env);
  // two points of the same database 1% of guests apart, as our full and incremental are
  const dump = `pg_dump -Fp -f ${dumps}/db.sql ${input.sourceUrl} && restic backup -q ${dumps}`;
  await sh(dump, env);
  await sh(`psql -q ${input.sourceUrl} -c "UPDATE guests SET dietary = 'pruned' WHERE random() < 0.01"`);
  await sh(dump, env);
  const before = await du(repo);
  await sh('sync');
  const m = await measure('restic', ['forget', '-q', '--keep-last', '1', '--prune'], env);
  const after = await du(repo);
  rmSync(repo, { recursive: true, force: true });
  rmSync(dumps, { recursive: true, force: true });
  return {
    tool: 'restic forget --prune',
    wall_s: m.wall_s,
    cpu_s: m.cpu_s,
    peak_rss_mb: m.peak_rss_mb,
    stored_before: before,
    bytes_freed: before - after,
  };
}
