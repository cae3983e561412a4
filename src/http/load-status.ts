/**
 * What load management is doing, for the API (`load` in GET /api/targets; GET /api/schedules may
 * include it too) and /metrics: each queue's depth against the backpressure bound, the deferrals
 * counted since they began (by reason and queue), the latest of each, and the source guard's verdict.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AppContext } from '../context.js';
import { onRequestPath } from '../queues/connection.js';
import { readLoadRecords, type LoadRecords } from '../queues/load.js';
import type { QueueName } from '../queues/names.js';

export interface LoadStatus {
  backpressure: {
    maxDepth: number;
    tiers: string[];
    queues: { queue: string; depth: number; deferring: boolean }[];
  };
  deferred: LoadRecords['deferred'];
  lastDeferred: LoadRecords['last'];
  sourceGuard: (NonNullable<LoadRecords['guard']> & { enabled: true }) | { enabled: boolean; under: null };
}

export async function loadStatus(ctx: AppContext): Promise<LoadStatus> {
  const { backpressure, guard } = ctx.config.load;
  const names = Object.keys(ctx.queues.queues) as QueueName[];
  const [depths, records] = await onRequestPath(ctx.queues, (q) =>
    Promise.all([
      Promise.all(names.map((n) => q[n].getJobCounts('wait', 'prioritized'))),
      readLoadRecords(ctx.queues.request.connection, ctx.queues.prefix),
    ]),
  );
  const enabled =
    guard.maxActiveConnections !== undefined ||
    guard.maxReplicationLagSeconds !== undefined ||
    guard.checks.length > 0;
  return {
    backpressure: {
      maxDepth: backpressure.maxDepth,
      tiers: backpressure.tiers,
      queues: names.map((queue, i) => {
        const depth = (depths[i]!.wait ?? 0) + (depths[i]!.prioritized ?? 0);
        return { queue, depth, deferring: backpressure.maxDepth > 0 && depth > backpressure.maxDepth };
      }),
    },
    deferred: records.deferred,
    lastDeferred: records.last,
    sourceGuard: enabled && records.guard ? { ...records.guard, enabled } : { enabled, under: null },
  };
}

/** Deferral counts, backpressure per queue and the guard's verdict, read at each scrape. */
export function registerLoadMetrics(registry: Registry, ctx: AppContext): void {
  let current: Promise<LoadStatus> | undefined;
  // one read per scrape for the three metrics
  const status = () => {
    current ??= loadStatus(ctx).finally(() => setImmediate(() => (current = undefined)));
    return current;
  };
  new Counter({
    name: 'wedvault_jobs_deferred_total',
    help: 'Scheduled jobs held back (moved to delayed, not dropped), by queue and reason (guard, backpressure)',
    labelNames: ['queue', 'reason'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const d of (await status()).deferred) this.inc({ queue: d.queue, reason: d.reason }, d.count);
    },
  });
  new Gauge({
    name: 'wedvault_backpressure_deferring',
    help: '1 while the queue is deeper than the backpressure bound (low-tier scheduled jobs are deferred)',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const q of (await status()).backpressure.queues) this.set({ queue: q.queue }, q.deferring ? 1 : 0);
    },
  });
  new Gauge({
    name: 'wedvault_source_under_pressure',
    help: 'The source guard’s latest verdict: 1 under pressure (heavy scheduled jobs wait), 0 not; absent when off or not read yet',
    registers: [registry],
    async collect() {
      this.reset();
      const g = (await status()).sourceGuard;
      if (g.under !== null) this.set(g.under ? 1 : 0);
    },
  });
}
