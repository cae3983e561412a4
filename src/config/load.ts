/** The `load` section of the config file: source guard, aging, backpressure and event triggers (README, "Load management"). */
import { z } from 'zod';
import type { TierCadence } from './scheduling.js';

/** The tiers jobs are prioritised by (src/queues/priority.ts), each with its aging bound. */
export const LOAD_TIERS = ['week', 'month', 'quarter', 'later', 'after', 'maintenance'] as const;
export type LoadTier = (typeof LOAD_TIERS)[number];

const minutes = z.number().positive().max(525_600);
const seconds = (max: number) => z.number().positive().max(max);

/** A source query whose first column of its first row is compared with `max` (over it: under pressure). */
export const pressureCheckSchema = z.strictObject({
  sql: z
    .string()
    .min(1)
    .refine((s) => !s.includes(';'), 'one statement, no ";"'),
  max: z.number(),
  name: z.string().min(1).default('custom'),
});

export const guardSchema = z.strictObject({
  /** Client sessions of the source database that are not idle (ours excluded). */
  maxActiveConnections: z.number().int().positive().optional(),
  /** Replay lag of the source's standbys, or of the source itself when it is a standby. */
  maxReplicationLagSeconds: z.number().positive().optional(),
  checks: z
    .array(pressureCheckSchema)
    .default([])
    .refine((cs) => new Set(cs.map((c) => c.name)).size === cs.length, 'each check needs a name of its own'),
  /** A held-back job is tried again this long after. */
  retrySeconds: seconds(86_400).default(60),
  /** A reading is reused this long (every worker of a process shares it). */
  cacheSeconds: z.number().min(0).max(3600).default(5),
});

export const agingSchema = z.strictObject({
  /** A job waiting longer than its tier's bound is promoted ahead of every prioritised job. */
  boundMinutes: z
    .strictObject(Object.fromEntries(LOAD_TIERS.map((t) => [t, minutes.optional()])))
    .default({}),
  sweepSeconds: seconds(3600).default(30),
});

export const backpressureSchema = z.strictObject({
  /** Jobs waiting in a queue (waiting + prioritised) past which low-tier scheduled jobs are deferred; 0: off. */
  maxDepth: z.number().int().min(0).default(5_000),
  tiers: z.array(z.enum(LOAD_TIERS)).default(['later', 'maintenance']),
  deferSeconds: seconds(86_400).default(300),
});

export const eventsSchema = z.strictObject({
  /** Rows changed for one wedding (read from the events slot) that bring its next backup forward; 0: off. */
  rows: z.number().int().min(0).default(0),
  /** Megabytes of new or changed files for one wedding (files source scan); 0: off. */
  megabytes: z.number().min(0).default(0),
  everySeconds: seconds(86_400).default(60),
  /** The logical slot the row counts are consumed from (created when `rows` is on). */
  slot: z
    .string()
    .regex(/^[a-z0-9_]{1,63}$/, 'lower-case letters, digits and "_", at most 63 characters')
    .default('wedvault_events'),
});

export const loadSchema = z
  .strictObject({
    guard: guardSchema.prefault({}),
    aging: agingSchema.prefault({}),
    backpressure: backpressureSchema.prefault({}),
    events: eventsSchema.prefault({}),
  })
  .prefault({});

export type LoadConfig = z.infer<typeof loadSchema>;
export type GuardConfig = LoadConfig['guard'];

/** Aging bounds without scheduling tiers to derive them from (minutes). */
export const DEFAULT_AGING_MINUTES: Record<LoadTier, number> = {
  week: 15,
  month: 60,
  quarter: 240,
  later: 60,
  after: 60,
  maintenance: 1_440,
};

/**
 * Each tier's bound: configured, else half the slack between the tier's RPO and its shortest
 * cadence (a backup due every 24 h with an RPO of 26 h may wait 2 h; it ages after 1 h), at least
 * 5 minutes, so an aged job still lands inside the RPO. Maintenance: a day.
 */
export function agingBoundsMs(
  cfg: LoadConfig['aging'],
  tiers?: Readonly<Partial<Record<LoadTier, TierCadence>>>,
): Record<LoadTier, number> {
  const configured = cfg.boundMinutes as Partial<Record<LoadTier, number>>;
  const derived = (t: LoadTier): number => {
    const c = tiers?.[t];
    if (!c) return DEFAULT_AGING_MINUTES[t];
    return Math.max(5, (c.rpoMinutes - Math.min(c.filesEveryMinutes, c.databaseEveryMinutes)) / 2);
  };
  return Object.fromEntries(LOAD_TIERS.map((t) => [t, (configured[t] ?? derived(t)) * 60_000])) as Record<
    LoadTier,
    number
  >;
}
