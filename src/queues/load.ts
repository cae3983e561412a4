/**
 * Load management's shared vocabulary: which jobs are scheduled work (held back by windows, the
 * source guard and backpressure) and which are on-demand (never held back), a job's tier from its
 * priority, and the record of deferrals in Redis that /metrics and the API read from any process.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { LoadTier } from '../config/index.js';
import { PRIORITY } from './priority.js';

/** Who asked for a job: an API client (`demand`), a schedule, or an event trigger. */
export const triggerSchema = z.enum(['demand', 'schedule', 'event']);
export type Trigger = z.infer<typeof triggerSchema>;

/**
 * Scheduled work may be held back; on-demand work never is. Jobs without `trigger` (follow-ups,
 * validation requests) count as scheduled only when a schedule made them (`scheduleId`).
 */
export function isScheduledWork(data: unknown): boolean {
  const d = (data ?? {}) as { trigger?: unknown; scheduleId?: unknown };
  if (d.trigger !== undefined) return d.trigger !== 'demand';
  return typeof d.scheduleId === 'string';
}

/** Heavy jobs wait for a quiet source: full backups, full verification, drills and prune. */
export function isHeavy(queue: string, data: unknown): boolean {
  const d = (data ?? {}) as { type?: unknown; mode?: unknown };
  if (queue === 'backup') return d.type === 'full';
  if (queue === 'verify') return d.mode === 'full' || d.mode === 'drill';
  return queue === 'purge';
}

/** The tier a priority number was given for; 0 (an aged job, ahead of all) is none. */
export function tierOfPriority(priority: number | undefined): LoadTier | undefined {
  const found = Object.entries(PRIORITY).find(([, p]) => p === priority);
  return found?.[0] as LoadTier | undefined;
}

export type DeferReason = 'guard' | 'backpressure';

export interface DeferRecord {
  queue: string;
  reason: DeferReason;
  detail: string;
  /** The job held, or `plan` for due backups the planner left for its next tick. */
  jobId: string;
  until: number;
  /** How many were deferred at once (the planner's); default 1. */
  count?: number;
}

const keys = (prefix: string) => ({
  counts: `${prefix}:load:deferred`,
  last: `${prefix}:load:last`,
  guard: `${prefix}:load:guard`,
});

/** Counts the deferral (per reason and queue) and keeps the latest, for metrics and the API. */
export async function recordDefer(redis: Redis, prefix: string, d: DeferRecord): Promise<void> {
  const k = keys(prefix);
  await redis
    .multi()
    .hincrby(k.counts, `${d.reason}:${d.queue}`, d.count ?? 1)
    .hset(k.last, `${d.reason}:${d.queue}`, JSON.stringify({ ...d, at: Date.now() }))
    .exec();
}

export interface GuardState {
  under: boolean;
  reasons: string[];
  checkedAt: number;
}

/** The source guard's latest verdict, kept a while so the API shows what workers saw. */
export async function recordGuard(redis: Redis, prefix: string, state: GuardState): Promise<void> {
  await redis.set(keys(prefix).guard, JSON.stringify(state), 'EX', 3600);
}

export interface LoadRecords {
  deferred: { reason: DeferReason; queue: string; count: number }[];
  last: (DeferRecord & { at: number })[];
  guard: GuardState | null;
}

export async function readLoadRecords(redis: Redis, prefix: string): Promise<LoadRecords> {
  const k = keys(prefix);
  const [counts, last, guard] = await Promise.all([
    redis.hgetall(k.counts),
    redis.hgetall(k.last),
    redis.get(k.guard),
  ]);
  return {
    deferred: Object.entries(counts).map(([field, n]) => {
      const [reason, queue] = field.split(':') as [DeferReason, string];
      return { reason, queue, count: Number(n) };
    }),
    last: Object.values(last).map((v) => JSON.parse(v) as DeferRecord & { at: number }),
    guard: guard ? (JSON.parse(guard) as GuardState) : null,
  };
}
