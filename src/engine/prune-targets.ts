/** Prune on every configured target in turn: what `wedvault prune` and the purge job run. */
import type { Config } from '../config/index.js';
import { errorMessage, NotFoundError } from '../errors.js';
import { createStorage } from '../storage/factory.js';
import type { PruneProgress, PruneResult } from './repo/prune.js';
import { Repository } from './repo/repository.js';

export interface PruneTargetsOptions {
  dryRun: boolean;
  /** How long to wait for running backups on each target. */
  waitMs: number;
  /** Packs younger than this are kept. */
  graceMs: number;
}

export type TargetOutcome = { target: string; result?: PruneResult; skipped?: string; error?: string };

/** Prunes each target in turn (one at a time: prune reads whole packs); a failed target does not stop the others. */
export async function pruneTargets(
  config: Config,
  opts: PruneTargetsOptions,
  progress?: (target: string) => (p: PruneProgress) => void,
): Promise<TargetOutcome[]> {
  const out: TargetOutcome[] = [];
  for (const t of config.targets) {
    const storage = createStorage(t, config.credentialsEnv);
    try {
      const repo = await Repository.open(storage, config.masterKey);
      const result = await repo.prune({
        dryRun: opts.dryRun,
        lockWaitMs: opts.waitMs,
        graceMs: opts.graceMs,
        ...(progress ? { onProgress: progress(t.name) } : {}),
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
