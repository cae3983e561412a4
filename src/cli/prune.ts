/** `wedvault prune`: removes what no recovery point needs from the repository on every configured target. */
import type { PruneProgress } from '../engine/repo/prune.js';
import { pruneTargets, type PruneTargetsOptions, type TargetOutcome } from '../engine/prune-targets.js';

export { pruneTargets, type PruneTargetsOptions as PruneCliOptions };

/** Progress on stderr, once per phase and about every tenth of it. */
export function progressTo(target: string): (p: PruneProgress) => void {
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
