/** Pure cadence rules: a wedding's tier, its season and weekday factors, and when each component is next due. */
import type { SchedulingConfig, Weekday } from '../config/index.js';
import { WEEKDAYS } from '../config/scheduling.js';
import { daysUntil, localDate, tierFor, type WeddingTier } from '../queues/priority.js';

export interface WeddingFacts {
  id: string;
  /** YYYY-MM-DD, a calendar date in the wedding's zone; undefined: no date (tier `later`). */
  ceremonyDate: string | undefined;
  timeZone: string;
  region: string | undefined;
}

export interface Cadence {
  tier: WeddingTier;
  /** Days from today (wedding's zone) to the ceremony; negative after it; null without a date. */
  daysToCeremony: number | null;
  region: string;
  inSeason: boolean;
  peakDay: boolean;
  /** Product of the season and weekday factors: intervals are the tier's divided by it. */
  factor: number;
  rpoMs: number;
  filesEveryMs: number;
  databaseEveryMs: number;
  /** Continuous capture covers the database; the interval is the fallback when capture is off. */
  databaseContinuous: boolean;
}

export type Component = 'database' | 'files';

const MINUTE = 60_000;

/** Month (1–12) and weekday of an instant in a zone: a season and a peak day are the wedding's local ones. */
export function localCalendar(at: Date, timeZone: string): { month: number; weekday: Weekday } {
  const date = localDate(at, timeZone);
  const month = Number(date.slice(5, 7));
  const weekday = WEEKDAYS[new Date(`${date}T12:00:00Z`).getUTCDay()]!;
  return { month, weekday };
}

export function cadenceFor(w: WeddingFacts, now: Date, cfg: SchedulingConfig): Cadence {
  const tier = tierFor(w.ceremonyDate, now, w.timeZone);
  const region = w.region && cfg.seasons[w.region] ? w.region : cfg.defaultRegion;
  const season = cfg.seasons[region];
  const { month, weekday } = localCalendar(now, w.timeZone);
  const inSeason = !!season && season.months.includes(month);
  const peakDay = cfg.peakWeekdays.days.includes(weekday);
  const factor = (inSeason ? season.factor : 1) * (peakDay ? cfg.peakWeekdays.factor : 1);
  const t = cfg.tiers[tier];
  return {
    tier,
    daysToCeremony: w.ceremonyDate ? daysUntil(w.ceremonyDate, now, w.timeZone) : null,
    region,
    inSeason,
    peakDay,
    factor,
    rpoMs: t.rpoMinutes * MINUTE,
    filesEveryMs: Math.round((t.filesEveryMinutes * MINUTE) / factor),
    databaseEveryMs: Math.round((t.databaseEveryMinutes * MINUTE) / factor),
    databaseContinuous: t.databaseContinuous,
  };
}

export const everyMs = (c: Cadence, component: Component): number =>
  component === 'files' ? c.filesEveryMs : c.databaseEveryMs;

/** When the component is next due: its newest backup plus the interval; now when it never had one. */
export function nextDue(c: Cadence, component: Component, newest: Date | undefined, now: Date): Date {
  if (!newest) return now;
  return new Date(newest.getTime() + everyMs(c, component));
}

/** True when the backup should be enqueued now. */
export const isDue = (c: Cadence, component: Component, newest: Date | undefined, now: Date): boolean =>
  nextDue(c, component, newest, now).getTime() <= now.getTime();

/** The moment the wedding's RPO is missed if nothing new is backed up: newest + RPO (now when never backed up). */
export function rpoMissAt(c: Cadence, newest: Date | undefined, now: Date): Date {
  return newest ? new Date(newest.getTime() + c.rpoMs) : now;
}

export interface PlannedBackup {
  weddingId: string;
  component: Component;
  tier: WeddingTier;
  /** When it became due (now for a wedding never backed up). */
  dueAt: Date;
}

export interface PlanInput {
  weddings: readonly WeddingFacts[];
  /** The wedding's newest point of the component, whole-source points included. */
  newest: (weddingId: string, component: Component) => Date | undefined;
  now: Date;
  /** Continuous capture is on: tiers marked databaseContinuous need no database backups. */
  continuousCapture: boolean;
}

/** The components of the wedding's tier that need backups at all (the database is left to capture where it covers it). */
export function components(c: Cadence, continuousCapture: boolean): Component[] {
  return c.databaseContinuous && continuousCapture ? ['files'] : ['database', 'files'];
}

/** Every backup due now, most overdue first within each tier (the queue orders tiers by priority). */
export function planDue(input: PlanInput, cfg: SchedulingConfig): PlannedBackup[] {
  const due: PlannedBackup[] = [];
  const cadence = cadenceCache(input.now, cfg);
  for (const w of input.weddings) {
    const c = cadence(w);
    for (const component of components(c, input.continuousCapture)) {
      const newest = input.newest(w.id, component);
      const at = nextDue(c, component, newest, input.now);
      if (at <= input.now) due.push({ weddingId: w.id, component, tier: c.tier, dueAt: at });
    }
  }
  return due.sort((a, b) => a.dueAt.getTime() - b.dueAt.getTime());
}

/**
 * cadenceFor at one instant, kept per (date, zone, region): weddings sharing them share a cadence,
 * and 100,000 weddings have a few thousand such keys, which spares most calendar arithmetic.
 */
export function cadenceCache(now: Date, cfg: SchedulingConfig): (w: WeddingFacts) => Cadence {
  const cache = new Map<string, Cadence>();
  return (w) => {
    const key = `${w.ceremonyDate ?? ''}|${w.timeZone}|${w.region ?? ''}`;
    let c = cache.get(key);
    if (!c) cache.set(key, (c = cadenceFor(w, now, cfg)));
    return c;
  };
}
