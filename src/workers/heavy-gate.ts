/**
 * Holds scheduled heavy work (full backups, full verification, drills, prune) outside the source's
 * off-peak windows; on-demand requests carry no scheduleId and are never held here.
 */
import type { Job } from 'bullmq';
import { newestPoints } from '../catalog/cadence.js';
import type { AppContext } from '../context.js';
import { errorMessage } from '../errors.js';
import { earliestDatabaseRpoMiss } from '../producers/protection.js';
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
 * when some wedding's database RPO would be missed before the window opens.
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
  // a full backup saves the database RPO of the wedding that would miss it first (the whole
  // source's, by the later tier, when the source has no weddings table)
  let miss: { at: Date; weddingId?: string } | undefined;
  if (kind === 'full-backup') {
    // an unreadable source falls back to the whole source's rule below rather than failing the job
    miss = await earliestDatabaseRpoMiss(ctx, now).catch((err: unknown) => {
      ctx.log.warn({ err: errorMessage(err) }, 'heavy-work gate: weddings unreadable; whole-source RPO used');
      return undefined;
    });
    if (!miss) {
      const whole = (await newestPoints(ctx.db, [])).find(
        (p) => p.weddingId === null && p.component === 'database',
      );
      miss = { at: new Date((whole?.newest.getTime() ?? 0) + cfg.tiers.later.rpoMinutes * 60_000) };
    }
  }
  const question = { kind, source: HEAVY_SOURCE, now, rpoMissAt: miss?.at, weddingId: miss?.weddingId };
  const verdict = { ...mayRunHeavy(question, cfg), kind };
  if (!verdict.run) return verdict;
  const held = await guard?.(kind, job);
  return held ? { run: false, kind, reason: held.reason, retryAt: held.retryAt } : verdict;
}
