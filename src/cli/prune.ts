/** `wedvault prune`: removes what no recovery point needs from the repository on every configured target. */
import type { Config } from '../config/index.js';
import type { PruneProgress, PruneResult } from '../engine/repo/prune.js';
import { Repository } from '../engine/repo/repository.js';
import { errorMessage, NotFoundError } from '../errors.js';
import { createStorage } from '../storage/factory.js';

export interface PruneCliOptions {
  dryRun: boolean;
  /** How long to wait for running backups on each target. */
  waitMs: number;
  /** Packs younger than this are kept. */
  graceMs: number;
}

type TargetOutcome = { target: string; result?: PruneResult; skipped?: string; error?: string };

/** Prunes each target in turn (one at a time: prune reads whole packs); a failed target does not stop the others. */
export async function pruneTargets(config: Config, opts: PruneCliOptions): Promise<TargetOutcome[]> {
  const out: TargetOutcome[] = [];
  for (const t of config.targets) {
    const storage = createStorage(t, config.credentialsEnv);
    try {
      const repo = await Repository.open(storage, config.masterKey);
      const result = await repo.prune({
        dryRun: opts.dryRun,
        lockWaitMs: opts.waitMs,
        graceMs: opts.graceMs,
        onProgress: progressTo(t.name),
      });
      out.push({ target: t.name, result });
    } catch (err) {
      // a target no backup has written to yet holds nothing to prune
      if (err instanceof NotFoundError) out.push({ target: t.name, skipped: 'no repository' });
      else out.push({ target: t.name, error: errorMessage(err) });
    }
  }
  return out;
}

/** Progress on stderr, once per phase and about every tenth of it. */
function progressTo(target: string): (p: PruneProgress) => void {
  let last = '';
  return (p) => {
    const step = p.total > 0 ? Math.floor((10 * p.done) / p.total) : 10;
    const mark = `${p.phase}:${step}`;
    if (mark === last) return;
    last = mark;
    process.stderr.write(`${target}: ${p.phase} ${p.done}/${p.total}\n`);
  };
}

export function describeOutcome(o: TargetOutcome): string {
  if (o.skipped) return `${o.target}: skipped (${o.skipped})`;
  if (o.error) return `${o.target}: failed: ${o.error}`;
  const r = o.result!;
  const verb = r.dryRun ? 'would free' : 'freed';
  return (
    `${o.target}: ${verb} ${r.bytesFreed} bytes; ${r.packsDeleted} packs deleted, ${r.packsRepacked} repacked ` +
    `into ${r.packsWritten}, ${r.orphansDeleted} unindexed deleted, ${r.packsTooYoung} too young; ` +
    `${r.blobsRemoved} blobs removed (${r.erasedBlobs} erased); ${r.indexesWritten} indexes written, ` +
    `${r.indexesDeleted} deleted; ${r.snapshots} recovery points kept; ${r.durationMs} ms`
  );
}
