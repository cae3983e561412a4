/**
 * Aging, so no tier starves: a job that has waited longer than its tier's bound is promoted ahead
 * of every prioritised job (BullMQ priority 0: the plain wait list, served before the priority
 * set, first promoted first served). Pure: the sweep (src/workers/aging.ts) feeds it jobs and a clock.
 */
import type { LoadTier } from '../config/index.js';
import { tierOfPriority } from '../queues/load.js';

export interface WaitingJob {
  id: string;
  /** BullMQ priority; 0 means already ahead of every tier. */
  priority: number;
  /** When the job became due: added, plus any delay it was added with. */
  dueAt: number;
}

export interface Promotion {
  id: string;
  tier: LoadTier;
  waitedMs: number;
}

/** Jobs past their tier's bound, longest overdue first. A priority outside the tiers ages as `later`. */
export function agingDecision(
  jobs: readonly WaitingJob[],
  now: number,
  boundsMs: Readonly<Record<LoadTier, number>>,
): Promotion[] {
  return jobs
    .filter((j) => j.priority > 0)
    .map((j) => ({ id: j.id, tier: tierOfPriority(j.priority) ?? 'later', waitedMs: now - j.dueAt }))
    .filter((p) => p.waitedMs > boundsMs[p.tier])
    .sort((a, b) => b.waitedMs - boundsMs[b.tier] - (a.waitedMs - boundsMs[a.tier]));
}
