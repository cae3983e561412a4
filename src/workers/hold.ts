/**
 * Holds scheduled work back when starting it now would hurt: heavy jobs while the source database
 * is under pressure (the source guard), low-tier jobs while their queue is deep (backpressure).
 * A held job is moved to delayed, never dropped, with the reason on the job, in the log and in the
 * deferral counts (/metrics, GET /api/targets). On-demand jobs are never held.
 */
import { DelayedError, type Job } from 'bullmq';
import type { AppContext } from '../context.js';
import { agingBoundsMs, type GuardConfig, type LoadTier } from '../config/index.js';
import { judgePressure, readPressure, type PressureVerdict } from '../engine/postgres/pressure.js';
import { errorMessage } from '../errors.js';
import type { AdmitScheduled } from '../producers/cadence.js';
import {
  isHeavy,
  isScheduledWork,
  recordDefer,
  recordGuard,
  tierOfPriority,
  type DeferReason,
} from '../queues/load.js';
import type { QueueName } from '../queues/names.js';

export interface Hold {
  reason: DeferReason;
  detail: string;
  delayMs: number;
}

export interface BackpressureFacts {
  depth: number;
  maxDepth: number;
  tier: LoadTier | undefined;
  deferTiers: readonly LoadTier[];
}

/** Pure: a low-tier job is deferred while its queue holds more than `maxDepth` waiting jobs (0: off). */
export function backpressureDefers(f: BackpressureFacts): boolean {
  return f.maxDepth > 0 && f.tier !== undefined && f.deferTiers.includes(f.tier) && f.depth > f.maxDepth;
}

const guardOn = (g: GuardConfig) =>
  g.maxActiveConnections !== undefined || g.maxReplicationLagSeconds !== undefined || g.checks.length > 0;

/** One process's view: a guard reading and queue depths are reused briefly by every job it starts. */
export function createHolds(ctx: AppContext): (job: Job) => Promise<Hold | undefined> {
  const { guard, backpressure } = ctx.config.load;
  let reading: { at: number; verdict: Promise<PressureVerdict | undefined> } | undefined;
  const depths = new Map<string, { at: number; depth: Promise<number> }>();

  function sourceVerdict(): Promise<PressureVerdict | undefined> {
    if (reading && Date.now() - reading.at < guard.cacheSeconds * 1000) return reading.verdict;
    const verdict = readPressure(ctx.config.sources.postgres.url, guard).then(
      async (r) => {
        const v = judgePressure(r, guard);
        const state = { ...v, checkedAt: Date.now() };
        await recordGuard(ctx.queues.connection, ctx.queues.prefix, state).catch(() => undefined);
        return v;
      },
      (err: unknown) => {
        // an unreachable source holds nothing back: the job itself will fail and retry
        ctx.log.warn({ err: errorMessage(err) }, 'source guard could not read the source; not holding');
        return undefined;
      },
    );
    reading = { at: Date.now(), verdict };
    return verdict;
  }

  function depthOf(queue: QueueName): Promise<number> {
    const known = depths.get(queue);
    if (known && Date.now() - known.at < 1_000) return known.depth;
    const depth = ctx.queues.queues[queue]
      .getJobCounts('wait', 'prioritized')
      .then((c) => (c.wait ?? 0) + (c.prioritized ?? 0));
    depths.set(queue, { at: Date.now(), depth });
    return depth;
  }

  return async (job) => {
    if (!isScheduledWork(job.data)) return undefined;
    const queue = job.queueName as QueueName;
    if (guardOn(guard) && isHeavy(queue, job.data)) {
      const v = await sourceVerdict();
      if (v?.under)
        return { reason: 'guard', detail: v.reasons.join('; '), delayMs: guard.retrySeconds * 1000 };
    }
    const tier = tierOfPriority(job.priority);
    if (backpressure.maxDepth > 0 && tier && backpressure.tiers.includes(tier)) {
      const depth = await depthOf(queue);
      const facts = { depth, maxDepth: backpressure.maxDepth, tier, deferTiers: backpressure.tiers };
      if (backpressureDefers(facts))
        return {
          reason: 'backpressure',
          detail: `queue ${queue} holds ${depth} waiting jobs > ${backpressure.maxDepth}`,
          delayMs: backpressure.deferSeconds * 1000,
        };
    }
    return undefined;
  };
}

/** Moves the job to delayed and says why; the caller throws the DelayedError this returns. */
export async function deferJob(ctx: AppContext, job: Job, token: string, hold: Hold): Promise<DelayedError> {
  const until = Date.now() + hold.delayMs;
  await job.moveToDelayed(until, token);
  const record = {
    queue: job.queueName,
    reason: hold.reason,
    detail: hold.detail,
    jobId: String(job.id),
    until,
  };
  await job.log(`deferred (${hold.reason}) until ${new Date(until).toISOString()}: ${hold.detail}`);
  await recordDefer(ctx.queues.connection, ctx.queues.prefix, record).catch(() => undefined);
  ctx.log.info({ ...record, until: new Date(until).toISOString() }, 'scheduled job held back');
  return new DelayedError();
}

/**
 * Backpressure at the cadence planner (its `admit` hook): while the backup queue is deeper than
 * the bound, due backups of low tiers are left for a later tick (still due, so never dropped),
 * unless they have been due longer than their tier's aging bound: backpressure must not starve them.
 */
export function admitUnderBackpressure(ctx: AppContext, clock: () => number = Date.now): AdmitScheduled {
  const { backpressure, aging } = ctx.config.load;
  const bounds = agingBoundsMs(aging, ctx.config.scheduling.tiers);
  return async (due) => {
    if (backpressure.maxDepth <= 0 || due.length === 0) return due;
    const counts = await ctx.queues.queues.backup.getJobCounts('wait', 'prioritized');
    const depth = (counts.wait ?? 0) + (counts.prioritized ?? 0);
    const now = clock();
    const facts = { depth, maxDepth: backpressure.maxDepth, deferTiers: backpressure.tiers };
    const admitted = due.filter(
      (d) => !backpressureDefers({ ...facts, tier: d.tier }) || now - d.dueAt.getTime() > bounds[d.tier],
    );
    const deferred = due.length - admitted.length;
    if (deferred > 0) {
      const detail = `queue backup holds ${depth} waiting jobs > ${backpressure.maxDepth}: ${deferred} due backups of tiers ${backpressure.tiers.join(', ')} left for the next tick`;
      const record = {
        queue: 'backup',
        reason: 'backpressure' as const,
        detail,
        jobId: 'plan',
        until: now,
        count: deferred,
      };
      await recordDefer(ctx.queues.connection, ctx.queues.prefix, record).catch(() => undefined);
      ctx.log.info({ depth, deferred }, 'backpressure: low-tier due backups deferred');
    }
    return admitted;
  };
}
