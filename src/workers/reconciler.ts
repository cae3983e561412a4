/**
 * The reconciler: at start and every WEDVAULT_RECONCILE_MS, one process at a time (a Redis lock)
 * compares the catalog with the queues and mends what a crash or a Redis that lost its data left
 * behind: stranded operations, tests and replicas (see reconcile-jobs.ts), dead drills' scratch space,
 * and job schedulers missing from Redis though the catalog's schedules table still has them.
 */
import { randomUUID } from 'node:crypto';
import { enabledSchedules } from '../catalog/schedules.js';
import type { AppContext } from '../context.js';
import { errorMessage } from '../errors.js';
import { QUEUES } from '../queues/names.js';
import { installSchedules, type ScheduleSpec } from '../producers/schedules.js';
import {
  reconcileOperations,
  reconcileReplicas,
  reconcileTests,
  type ReconcileReport,
} from './reconcile-jobs.js';

export interface ReconcileOptions {
  everyMs: number;
  /** A row untouched this long is no longer being worked on: the job lock's duration. */
  staleMs: number;
}

export interface Reconciler {
  /** One pass now; undefined when another process holds the lock. */
  runOnce(): Promise<(ReconcileReport & { schedulesReinstalled: number }) | undefined>;
  stop(): Promise<void>;
}

/** Deletes the lock only if it is still ours. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/** Installs again the schedules the catalog has but Redis lost. */
async function reinstallSchedules(ctx: AppContext): Promise<number> {
  const wanted = await enabledSchedules(ctx.db);
  if (wanted.length === 0) return 0;
  const present = new Set<string>();
  for (const q of [QUEUES.backup, QUEUES.verify, QUEUES.purge, QUEUES.plan]) {
    for (const s of await ctx.queues.queues[q].getJobSchedulers()) present.add(s.key);
  }
  const missing: ScheduleSpec[] = wanted
    .filter((s) => !present.has(s.id))
    .map((s) => ({
      id: s.id,
      queue: s.queue,
      data: s.data,
      ...(s.pattern ? { pattern: s.pattern, tz: s.tz ?? undefined } : { every: s.every ?? undefined }),
    }));
  if (missing.length > 0) {
    await installSchedules(ctx, missing);
    ctx.log.warn(
      { schedules: missing.map((s) => s.id) },
      'reconciler: job schedulers were missing from Redis; reinstalled',
    );
  }
  return missing.length;
}

export function startReconciler(ctx: AppContext, opts: ReconcileOptions): Reconciler {
  const lockKey = `${ctx.queues.prefix}:reconciler:lock`;
  const token = randomUUID();
  let running: Promise<unknown> | undefined;
  let stopped = false;

  async function runOnce() {
    const got = await ctx.queues.connection.set(
      lockKey,
      token,
      'PX',
      Math.max(2 * opts.everyMs, 10_000),
      'NX',
    );
    if (got !== 'OK') return undefined;
    try {
      const report: ReconcileReport = { resumed: 0, failed: 0, scratchDropped: 0, replicasRequeued: 0 };
      const schedulesReinstalled = await reinstallSchedules(ctx);
      await reconcileOperations(ctx, opts.staleMs, report);
      await reconcileTests(ctx, opts.staleMs, report);
      await reconcileReplicas(ctx, opts.staleMs, report);
      return { ...report, schedulesReinstalled };
    } finally {
      await ctx.queues.connection.eval(RELEASE, 1, lockKey, token);
    }
  }

  function tick(): void {
    if (stopped || running) return;
    running = runOnce()
      .catch((err: unknown) =>
        ctx.log.error({ err: errorMessage(err) }, 'reconciler pass failed; next one retries'),
      )
      .finally(() => (running = undefined));
  }
  tick();
  const timer = setInterval(tick, opts.everyMs);
  timer.unref();
  return {
    runOnce,
    async stop() {
      stopped = true;
      clearInterval(timer);
      // a pass waiting on an unreachable Redis must not hold up shutdown; its updates are guarded anyway
      await Promise.race([running, new Promise((r) => setTimeout(r, 5_000).unref())]);
    },
  };
}
