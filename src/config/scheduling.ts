/** The `scheduling` config section: cadence and RPO per wedding tier, seasons per region, peak weekdays, off-peak windows. */
import { getNextMillis } from 'bullmq';
import { z } from 'zod';

export const TIERS = ['week', 'month', 'quarter', 'later', 'after'] as const;
export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** An IANA zone the runtime knows: a mistyped zone would shift every window by hours, so it is refused. */
export const timeZoneSchema = z.string().refine(
  (tz) => {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  },
  { message: 'unknown time zone (expected an IANA name such as Europe/London)' },
);

/** A cron pattern BullMQ's job schedulers accept (five or six fields). */
export const cronPatternSchema = z.string().refine(
  (pattern) => {
    try {
      return Number.isFinite(getNextMillis(Date.now(), { pattern }));
    } catch {
      return false;
    }
  },
  { message: 'invalid cron pattern' },
);

const minutes = z.number().positive().max(525_600);

/** One tier: the RPO target and how often each component is backed up (before the season and weekday factors). */
export const tierCadenceSchema = z.strictObject({
  rpoMinutes: minutes,
  filesEveryMinutes: minutes,
  databaseEveryMinutes: minutes,
  /** Continuous capture covers the database when PITR is on: the interval is then a fallback only. */
  databaseContinuous: z.boolean().default(false),
});
export type TierCadence = z.infer<typeof tierCadenceSchema>;

/** A tier as the config file and PUT /api/schedules/wedding-cadence write it: any fields, the rest from the defaults. */
export const tierEditSchema = z.strictObject({
  rpoMinutes: minutes.optional(),
  filesEveryMinutes: minutes.optional(),
  databaseEveryMinutes: minutes.optional(),
  databaseContinuous: z.boolean().optional(),
});

export const DEFAULT_TIERS: Record<(typeof TIERS)[number], TierCadence> = {
  week: { rpoMinutes: 60, filesEveryMinutes: 15, databaseEveryMinutes: 60, databaseContinuous: true },
  month: { rpoMinutes: 360, filesEveryMinutes: 60, databaseEveryMinutes: 240, databaseContinuous: false },
  quarter: { rpoMinutes: 720, filesEveryMinutes: 360, databaseEveryMinutes: 720, databaseContinuous: false },
  later: { rpoMinutes: 1560, filesEveryMinutes: 1440, databaseEveryMinutes: 1440, databaseContinuous: false },
  after: { rpoMinutes: 180, filesEveryMinutes: 30, databaseEveryMinutes: 120, databaseContinuous: false },
};

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM (24-hour)');
const weekday = z.enum(WEEKDAYS);

/** A daily span of local time; `end` ≤ `start` crosses midnight. `days` are the days it starts on (default every day). */
export const windowSchema = z.strictObject({
  start: hhmm,
  end: hhmm,
  days: z.array(weekday).min(1).optional(),
});
export type OffPeakWindow = z.infer<typeof windowSchema>;

export const sourceWindowsSchema = z
  .strictObject({ tz: timeZoneSchema.default('UTC'), windows: z.array(windowSchema).min(1) })
  .superRefine((s, ctx) => {
    const at = overlapAt(s.windows);
    if (at) ctx.addIssue({ code: 'custom', path: ['windows', at[1]], message: `overlaps window ${at[0]}` });
  });
export type SourceWindows = z.infer<typeof sourceWindowsSchema>;

const toMinute = (t: string) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3, 5));

/** The first pair of windows sharing a minute of the week, as indexes; undefined when none do. */
function overlapAt(windows: OffPeakWindow[]): [number, number] | undefined {
  const week = new Int16Array(7 * 1440).fill(-1);
  for (const [i, w] of windows.entries()) {
    const start = toMinute(w.start);
    const length = (toMinute(w.end) - start + 1440) % 1440 || 1440;
    for (const day of w.days ?? WEEKDAYS) {
      const base = WEEKDAYS.indexOf(day) * 1440 + start;
      for (let m = 0; m < length; m++) {
        const slot = (base + m) % week.length;
        if (week[slot]! >= 0 && week[slot] !== i) return [week[slot]!, i];
        week[slot] = i;
      }
    }
  }
  return undefined;
}

export const seasonSchema = z.strictObject({
  months: z.array(z.number().int().min(1).max(12)).default([]),
  factor: z.number().min(1).max(100).default(1),
});

export const schedulingSchema = z
  .strictObject({
    tiers: z
      .strictObject({
        week: tierEditSchema.optional(),
        month: tierEditSchema.optional(),
        quarter: tierEditSchema.optional(),
        later: tierEditSchema.optional(),
        after: tierEditSchema.optional(),
      })
      .default({}),
    /** The region of a wedding without one (`sources.postgres.weddingRegion` unset or NULL). */
    defaultRegion: z.string().min(1).default('default'),
    /** Wedding season per region: in these months every tier's cadence is multiplied by the factor. */
    seasons: z
      .record(z.string().min(1), seasonSchema)
      .default({ default: { months: [5, 6, 7, 8, 9], factor: 2 } }),
    /** Days (in the wedding's time zone) when weddings happen: cadence multiplied again. */
    peakWeekdays: z
      .strictObject({
        days: z.array(weekday).default(['fri', 'sat', 'sun']),
        factor: z.number().min(1).max(100).default(1.5),
      })
      .prefault({}),
    /** Per source (`database`, a files source's name, or `default`): heavy work runs only inside these. */
    offPeak: z.record(z.string().min(1), sourceWindowsSchema).default({}),
    /** How often the planner looks for due weddings. */
    planEveryMinutes: z.number().min(1).max(60).default(5),
    /**
     * `per-wedding`: one job per due wedding and component. `coalesced`: one whole-source job per
     * component whenever any wedding is due (at the nearest due tier's priority), for as long as a
     * backup reads the whole source whatever wedding it names. The default: a backup of one wedding
     * would read everyone's rows and files, so per-wedding jobs multiply the load by the due weddings.
     */
    jobs: z.enum(['per-wedding', 'coalesced']).default('coalesced'),
    /** Fixed schedules' cron patterns and zones, by schedule id (nightly-full, weekly-drill, …). */
    schedules: z
      .record(
        z.string().min(1),
        z.strictObject({ pattern: cronPatternSchema, tz: timeZoneSchema.default('UTC') }),
      )
      .default({}),
    /** POSTed a JSON alert when a tier's newest verified point is older than its RPO. */
    alertWebhookUrl: z.url().optional(),
  })
  .prefault({});
export type SchedulingFile = z.infer<typeof schedulingSchema>;

export interface SchedulingConfig {
  tiers: Record<(typeof TIERS)[number], TierCadence>;
  defaultRegion: string;
  seasons: Record<string, { months: number[]; factor: number }>;
  peakWeekdays: { days: Weekday[]; factor: number };
  offPeak: Record<string, SourceWindows>;
  planEveryMinutes: number;
  jobs: 'per-wedding' | 'coalesced';
  schedules: Record<string, { pattern: string; tz: string }>;
  alertWebhookUrl?: string | undefined;
}

/** The file's section with every tier filled in from the defaults. */
export function resolveScheduling(file: SchedulingFile): SchedulingConfig {
  const tiers = { ...DEFAULT_TIERS };
  for (const t of TIERS) tiers[t] = { ...DEFAULT_TIERS[t], ...definedOnly(file.tiers[t] ?? {}) };
  return { ...file, tiers };
}

/** Drops keys whose value is undefined, so a spread keeps the default underneath. */
export function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
