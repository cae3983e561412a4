/**
 * Job schedulers (BullMQ `upsertJobScheduler`) mirrored in the catalog's schedules table: the fixed
 * heavy work (nightly full, verification, drill, purge) and the cadence planner's tick.
 */
import type { Redis } from 'ioredis';
import { listSchedules, recordSchedule, seedSchedule } from '../catalog/schedules.js';
import type { SchedulingConfig } from '../config/index.js';
import type { AppContext } from '../context.js';
import { JOBS, QUEUES } from '../queues/names.js';
import { PRIORITY } from '../queues/priority.js';
import { SCENARIOS } from '../policy/dr-plans.js';
import { CADENCE_SCHEDULE } from './cadence.js';

export interface ScheduleSpec {
  id: string;
  pattern?: string | undefined;
  every?: number | undefined;
  tz?: string | undefined;
  queue: 'backup' | 'verify' | 'purge' | 'plan' | 'restore';
  data: Record<string, unknown>;
}

export const DEFAULT_SCHEDULES: ScheduleSpec[] = [
  { id: 'nightly-full', pattern: '0 2 * * *', tz: 'UTC', queue: 'backup', data: { type: 'full' } },
  { id: 'hourly-files', every: 3_600_000, queue: 'backup', data: { type: 'files' } },
  // full read-back of the newest point on every target, and a real restore drill, each weekly
  { id: 'weekly-full-verify', pattern: '0 4 * * 0', tz: 'UTC', queue: 'verify', data: { mode: 'full' } },
  { id: 'weekly-drill', pattern: '0 5 * * 0', tz: 'UTC', queue: 'verify', data: { mode: 'drill' } },
  // forget what the retention policy lets go (nothing without a policy), after the nightly full
  { id: 'daily-purge', pattern: '0 3 * * *', tz: 'UTC', queue: 'purge', data: { reason: 'retention' } },
  // every disaster-recovery scenario drilled quarterly (first of Jan/Apr/Jul/Oct), an hour apart
  ...SCENARIOS.map((drill, i) => ({
    id: `dr-drill-${drill}`,
    pattern: `0 ${6 + i} 1 1,4,7,10 *`,
    tz: 'UTC',
    queue: 'restore' as const,
    data: { drill },
  })),
];

/** The defaults with the config's patterns (`scheduling.schedules`) and the planner's tick. */
export function configuredSchedules(cfg: SchedulingConfig): ScheduleSpec[] {
  const fixed = DEFAULT_SCHEDULES.map((s) => {
    const o = cfg.schedules[s.id];
    return o ? { ...s, pattern: o.pattern, tz: o.tz, every: undefined } : s;
  });
  const tick = {
    id: CADENCE_SCHEDULE,
    every: cfg.planEveryMinutes * 60_000,
    queue: 'plan' as const,
    data: {},
  };
  return [...fixed, tick];
}

const priorityOf = (s: ScheduleSpec) =>
  s.queue === 'backup' ? PRIORITY.later : s.queue === 'plan' ? PRIORITY.week : PRIORITY.maintenance;

/** Upserts the given schedulers in Redis (the reconciler puts back lost ones this way). */
export async function upsertSchedulers(ctx: AppContext, specs: ScheduleSpec[]): Promise<void> {
  for (const s of specs) {
    const repeat = s.pattern ? { pattern: s.pattern, tz: s.tz } : { every: s.every! };
    await ctx.queues.queues[QUEUES[s.queue]].upsertJobScheduler(s.id, repeat, {
      name: JOBS[s.queue],
      data: { ...s.data, scheduleId: s.id },
      opts: { priority: priorityOf(s) },
    });
  }
}

export async function removeScheduler(ctx: AppContext, s: ScheduleSpec): Promise<void> {
  await ctx.queues.queues[QUEUES[s.queue]].removeJobScheduler(s.id);
}

const LOCK_MS = 30_000;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/**
 * Rebuilds every schedule from the defaults, the config and the catalog (API edits win), idempotently.
 * Instances starting together take turns on a Redis lock, so each schedule is installed once and a
 * disabled one is removed once.
 */
export async function rebuildSchedules(ctx: AppContext): Promise<string[]> {
  const redis = ctx.queues.connection as Redis;
  const key = `${ctx.queues.prefix}:schedules:rebuild`;
  const token = `${process.pid}.${Math.random()}`;
  const deadline = Date.now() + LOCK_MS;
  while ((await redis.set(key, token, 'PX', LOCK_MS, 'NX')) !== 'OK') {
    if (Date.now() > deadline) break; // a holder that died: its lock expires; go on
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    for (const s of configuredSchedules(ctx.config.scheduling)) await seedSchedule(ctx.db, s);
    // a row edited through the API (pattern, every, tz, enabled, the planner's tiers) keeps its edit
    const rows = await listSchedules(ctx.db);
    const wanted = rows.filter((r) => r.enabled).map(specOfRow);
    const present = await presentSchedulers(ctx);
    await upsertSchedulers(
      ctx,
      wanted.filter((s) => !sameScheduler(present.get(s.id), s)),
    );
    for (const r of rows.filter((x) => !x.enabled && present.has(x.id)))
      await ctx.queues.queues[QUEUES[r.queue as ScheduleSpec['queue']]].removeJobScheduler(r.id);
    ctx.log.info({ schedules: wanted.map((s) => s.id) }, 'schedules installed');
    return wanted.map((s) => s.id);
  } finally {
    await redis.eval(RELEASE, 1, key, token);
  }
}

/** A full rebuild; or the given specs upserted in Redis and recorded in the catalog (the reconciler's and tests' way). */
export async function installSchedules(ctx: AppContext, specs?: ScheduleSpec[]): Promise<void> {
  if (!specs) {
    await rebuildSchedules(ctx);
    return;
  }
  await upsertSchedulers(ctx, specs);
  for (const s of specs) await recordSchedule(ctx.db, s);
}

export function specOfRow(r: {
  id: string;
  queue: string;
  every: number | null;
  pattern: string | null;
  tz: string | null;
  data: Record<string, unknown>;
}): ScheduleSpec {
  const { scheduleId: _, ...data } = r.data;
  return {
    id: r.id,
    queue: r.queue as ScheduleSpec['queue'],
    data,
    ...(r.pattern ? { pattern: r.pattern, tz: r.tz ?? 'UTC' } : { every: r.every ?? undefined }),
  };
}

interface Present {
  pattern?: string | null | undefined;
  every?: number | string | null | undefined;
  tz?: string | null | undefined;
}

async function presentSchedulers(ctx: AppContext): Promise<Map<string, Present>> {
  const out = new Map<string, Present>();
  for (const q of [QUEUES.backup, QUEUES.verify, QUEUES.purge, QUEUES.plan, QUEUES.restore])
    for (const s of await ctx.queues.queues[q].getJobSchedulers()) out.set(s.key, s);
  return out;
}

/** Unchanged schedulers are left alone: an upsert would move their next run. */
function sameScheduler(p: Present | undefined, s: ScheduleSpec): boolean {
  if (!p) return false;
  if (s.pattern) return p.pattern === s.pattern && (p.tz ?? 'UTC') === (s.tz ?? 'UTC');
  return Number(p.every) === s.every && !p.pattern;
}
