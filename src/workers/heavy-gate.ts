/**
 * Holds scheduled heavy work (full backups, full verification, drills, prune) outside the source's
 * off-peak windows; on-demand requests carry no scheduleId and are never held here.
 */
import type { Job } from 'bullmq';
import { newestPoints } from '../catalog/cadence.js';
import type { AppContext } from '../context.js';
import { heavyKindOf, mayRunHeavy, type HeavyKind, type HeavyVerdict } from '../policy/windows.js';

/**
 * Hook for the load manager's source guard and backpressure: a reason to hold the heavy work now
 * (and when to look again), or undefined to let it run. Not set by this module.
 */
export type HeavyWorkGuard = (
  kind: HeavyKind,
  job: Job,
) => Promise<{ reason: string; retryAt: Date } | undefined>;

/** The heavy work a job is, when it came from a fixed schedule; undefined for everything else. */
export function heavyJobKind(job: Job): HeavyKind | undefined {
  const d = job.data as { scheduleId?: string; type?: string; mode?: string };
  if (!d.scheduleId || d.scheduleId.startsWith('cadence-')) return undefined;
  return heavyKindOf(job.queueName, d);
}

/** Windows are the source database's (`scheduling.offPeak.database`, else `default`): heavy work loads it or its network. */
export const HEAVY_SOURCE = 'database';

/**
 * Whether to hold the job (with the moment to try again). A full backup runs outside the window
 * when the whole source's newest database point would pass the `later` tier's RPO before it opens.
 */
export async function heavyVerdict(
  ctx: AppContext,
  job: Job,
  now = new Date(),
  guard?: HeavyWorkGuard,
): Promise<(HeavyVerdict & { kind: HeavyKind }) | undefined> {
  const kind = heavyJobKind(job);
  if (!kind) return undefined;
  const cfg = ctx.config.scheduling;
  let rpoMissAt: Date | undefined;
  if (kind === 'full-backup') {
    const whole = (await newestPoints(ctx.db, [])).find(
      (p) => p.weddingId === null && p.component === 'database',
    );
    rpoMissAt = new Date((whole?.newest.getTime() ?? 0) + cfg.tiers.later.rpoMinutes * 60_000);
  }
  const verdict = { ...mayRunHeavy({ kind, source: HEAVY_SOURCE, now, rpoMissAt }, cfg), kind };
  if (!verdict.run) return verdict;
  const held = await guard?.(kind, job);
  return held ? { run: false, kind, reason: held.reason, retryAt: held.retryAt } : verdict;
}
