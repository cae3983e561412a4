/** Priority from ceremony proximity: the nearer the wedding, the sooner its jobs run (BullMQ: lower first). */

export const PRIORITY = {
  week: 1,
  month: 2,
  quarter: 3,
  later: 4,
  maintenance: 5,
  /** The 14 days after the ceremony (photos, final payments): as urgent as a wedding within the month. */
  after: 2,
} as const;
export type PriorityTier = keyof typeof PRIORITY;
/** The tiers a wedding can be in (every tier but maintenance), nearest first. */
export const WEDDING_TIERS = ['week', 'month', 'quarter', 'later', 'after'] as const;
export type WeddingTier = (typeof WEDDING_TIERS)[number];
/** Days after the ceremony that still count as the `after` tier. */
export const AFTER_DAYS = 14;

const dateFormats = new Map<string, Intl.DateTimeFormat>();

/** Calendar date (YYYY-MM-DD) of an instant in a time zone (formatters kept per zone: planning reads 100,000 dates). */
export function localDate(at: Date, timeZone: string): string {
  let f = dateFormats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    dateFormats.set(timeZone, f);
  }
  return f.format(at);
}

/**
 * Whole days from today (in the wedding's time zone) to the ceremony date. A ceremony is a calendar
 * date where it happens, so "5 days away" must not depend on the server's clock zone.
 */
export function daysUntil(ceremonyDate: string | Date, now: Date, timeZone = 'UTC'): number {
  const ceremony =
    typeof ceremonyDate === 'string' ? ceremonyDate.slice(0, 10) : localDate(ceremonyDate, timeZone);
  const today = localDate(now, timeZone);
  return Math.round((Date.parse(`${ceremony}T00:00:00Z`) - Date.parse(`${today}T00:00:00Z`)) / 86_400_000);
}

export function tierFor(
  ceremonyDate: string | Date | undefined | null,
  now = new Date(),
  timeZone = 'UTC',
): WeddingTier {
  if (!ceremonyDate) return 'later';
  const days = daysUntil(ceremonyDate, now, timeZone);
  if (days < -AFTER_DAYS) return 'later';
  if (days < 0) return 'after';
  if (days <= 7) return 'week';
  if (days <= 30) return 'month';
  if (days <= 90) return 'quarter';
  return 'later';
}

export function priorityFor(
  ceremonyDate: string | Date | undefined | null,
  now = new Date(),
  timeZone = 'UTC',
): number {
  return PRIORITY[tierFor(ceremonyDate, now, timeZone)];
}
