/**
 * Off-peak windows per source (pure, time-zone and DST aware) and the one question the scheduler
 * asks before heavy work: may it run now, and why.
 */
import type { SchedulingConfig, SourceWindows } from '../config/index.js';
import { WEEKDAYS } from '../config/scheduling.js';

/** Work that reads a whole source or repository: kept off the production database's busy hours. */
export type HeavyKind = 'full-backup' | 'full-verify' | 'drill' | 'prune';

/** The heavy work a scheduled job is (by queue and payload), or undefined for light work. */
export function heavyKindOf(queue: string, data: { type?: unknown; mode?: unknown }): HeavyKind | undefined {
  if (queue === 'backup' && data.type === 'full') return 'full-backup';
  if (queue === 'verify' && data.mode === 'full') return 'full-verify';
  if (queue === 'verify' && data.mode === 'drill') return 'drill';
  if (queue === 'purge') return 'prune';
  return undefined;
}

const MINUTE = 60_000;
const toMinute = (t: string) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3, 5));

interface Wall {
  year: number;
  month: number;
  day: number;
  minute: number;
  weekday: number;
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** Local wall-clock time of an instant: windows are read on the clock where the source's users live. */
function wall(at: Date, tz: string): Wall {
  let f = formats.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      weekday: 'short',
    });
    formats.set(tz, f);
  }
  const p = Object.fromEntries(f.formatToParts(at).map((x) => [x.type, x.value]));
  return {
    year: Number(p.year),
    month: Number(p.month),
    day: Number(p.day),
    minute: Number(p.hour) * 60 + Number(p.minute),
    weekday: WEEKDAYS.indexOf(p.weekday!.toLowerCase().slice(0, 3) as (typeof WEEKDAYS)[number]),
  };
}

/** UTC offset (ms) of a zone at an instant. */
function offsetMs(at: number, tz: string): number {
  const w = wall(new Date(at), tz);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, 0, w.minute);
  return asUtc - Math.floor(at / MINUTE) * MINUTE;
}

/**
 * The instant a local wall time names. In a spring-forward gap (02:30 that never happens) it is the
 * moment the clocks jump past it; in a fall-back repeat, the first of the two.
 */
export function zonedInstant(year: number, month: number, day: number, minute: number, tz: string): Date {
  const naive = Date.UTC(year, month - 1, day, 0, minute);
  const before = naive - offsetMs(naive - 86_400_000, tz);
  const after = naive - offsetMs(naive + 86_400_000, tz);
  const names = (t: number) => {
    const w = wall(new Date(t), tz);
    return Date.UTC(w.year, w.month - 1, w.day, 0, w.minute) === naive;
  };
  const hits = [before, after].filter(names);
  if (hits.length > 0) return new Date(Math.min(...hits));
  // a skipped time: the first minute past the jump, found between the two readings
  let [lo, hi] = [Math.min(before, after), Math.max(before, after)];
  while (hi - lo > MINUTE) {
    const mid = lo + Math.floor((hi - lo) / 2 / MINUTE) * MINUTE;
    if (offsetMs(mid, tz) === offsetMs(lo, tz)) lo = mid;
    else hi = mid;
  }
  return new Date(hi);
}

/** Is `at` inside one of the source's windows? (A window crossing midnight belongs to the day it starts.) */
export function inWindow(at: Date, s: SourceWindows): boolean {
  const w = wall(at, s.tz);
  return s.windows.some((win) => {
    const start = toMinute(win.start);
    const end = toMinute(win.end);
    const days = win.days?.map((d) => WEEKDAYS.indexOf(d));
    const startsOn = (weekday: number) => !days || days.includes(weekday);
    if (end > start) return startsOn(w.weekday) && w.minute >= start && w.minute < end;
    // crosses midnight: the evening part of today's window, or the morning part of yesterday's
    if (w.minute >= start) return startsOn(w.weekday);
    return w.minute < end && startsOn((w.weekday + 6) % 7);
  });
}

/** The next moment a window opens after `at` (within 8 days), or `at` itself when inside one. */
export function nextWindowStart(at: Date, s: SourceWindows): Date | undefined {
  if (inWindow(at, s)) return at;
  const today = wall(at, s.tz);
  let best: Date | undefined;
  for (let d = 0; d <= 8; d++) {
    const date = new Date(Date.UTC(today.year, today.month - 1, today.day + d));
    const weekday = WEEKDAYS[date.getUTCDay()]!;
    for (const win of s.windows) {
      if (win.days && !win.days.includes(weekday)) continue;
      const start = zonedInstant(
        date.getUTCFullYear(),
        date.getUTCMonth() + 1,
        date.getUTCDate(),
        toMinute(win.start),
        s.tz,
      );
      if (start > at && (!best || start < best)) best = start;
    }
    if (best) return best;
  }
  return best;
}

/** The windows of a source: its own, else the `default` entry; undefined means "always off-peak". */
export const windowsFor = (cfg: SchedulingConfig, source: string): SourceWindows | undefined =>
  cfg.offPeak[source] ?? cfg.offPeak.default;

export interface HeavyVerdict {
  run: boolean;
  /** Why, for the log and the API: inside a window, no windows, or the RPO that would be missed. */
  reason: string;
  /** Runs outside its window because an RPO would be missed otherwise. */
  override?: boolean;
  /** When held: the moment to try again (the next window's start). */
  retryAt?: Date;
}

export interface HeavyQuestion {
  kind: HeavyKind;
  source: string;
  now: Date;
  /** When a wedding's RPO is missed unless this work runs (full backups only), and whose. */
  rpoMissAt?: Date | undefined;
  weddingId?: string | undefined;
}

/** May heavy scheduled work run now? On-demand requests never ask: windows hold back scheduled work only. */
export function mayRunHeavy(q: HeavyQuestion, cfg: SchedulingConfig): HeavyVerdict {
  const windows = windowsFor(cfg, q.source);
  if (!windows) return { run: true, reason: `no off-peak windows configured for ${q.source}` };
  if (inWindow(q.now, windows)) return { run: true, reason: `inside an off-peak window of ${q.source}` };
  const opens = nextWindowStart(q.now, windows);
  if (q.rpoMissAt && (!opens || q.rpoMissAt <= opens)) {
    const who = q.weddingId ? `wedding ${q.weddingId}` : 'a wedding';
    return {
      run: true,
      override: true,
      reason: `outside the off-peak window of ${q.source}, run anyway: ${who}'s RPO would be missed at ${q.rpoMissAt.toISOString()}${opens ? `, before the next window opens at ${opens.toISOString()}` : ''}`,
    };
  }
  return {
    run: false,
    reason: `${q.kind} held until the off-peak window of ${q.source} opens${opens ? ` at ${opens.toISOString()}` : ''}`,
    ...(opens ? { retryAt: opens } : {}),
  };
}
