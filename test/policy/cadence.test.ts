// Cadence policy with a fixed clock: tier crossings in the wedding's zone, season per region, peak weekdays.
import { describe, expect, it } from 'vitest';
import { resolveScheduling, schedulingSchema } from '../../src/config/scheduling.js';
import { cadenceFor, isDue, nextDue, rpoMissAt, type WeddingFacts } from '../../src/policy/cadence.js';

const cfg = resolveScheduling(
  schedulingSchema.parse({
    seasons: { default: { months: [6], factor: 2 }, south: { months: [12, 1, 2], factor: 3 } },
    peakWeekdays: { days: ['fri', 'sat', 'sun'], factor: 1.5 },
  }),
);
const wedding = (ceremonyDate: string | undefined, timeZone = 'UTC', region?: string): WeddingFacts => ({
  id: 'w1',
  ceremonyDate,
  timeZone,
  region,
});
const MIN = 60_000;

describe('tiers from the ceremony date', () => {
  it('crosses from quarter to month at local midnight 30 days before, in the wedding zone', () => {
    // 2026-05-31 is a Sunday; 11:59 UTC is 23:59 in Auckland (UTC+12), then midnight = 30 days to go
    const w = wedding('2026-07-01', 'Pacific/Auckland');
    expect(cadenceFor(w, new Date('2026-05-31T11:59:00Z'), cfg)).toMatchObject({
      tier: 'quarter',
      daysToCeremony: 31,
    });
    expect(cadenceFor(w, new Date('2026-05-31T12:00:00Z'), cfg)).toMatchObject({
      tier: 'month',
      daysToCeremony: 30,
    });
    // the same instant in UTC is still 31 days out
    expect(cadenceFor(wedding('2026-07-01'), new Date('2026-05-31T12:00:00Z'), cfg).tier).toBe('quarter');
  });

  it('is week on the ceremony day, after for 14 days, later from the 15th', () => {
    const w = wedding('2026-03-10', 'America/New_York');
    const at = (iso: string) => cadenceFor(w, new Date(iso), cfg).tier;
    expect(at('2026-03-10T04:59:00Z')).toBe('week'); // 23:59 on the 9th in New York
    expect(at('2026-03-10T15:00:00Z')).toBe('week'); // the day itself
    expect(at('2026-03-11T04:00:00Z')).toBe('after'); // 00:00 EDT on the 11th
    expect(at('2026-03-25T03:59:00Z')).toBe('after'); // 23:59 on the 24th: 14 days after
    expect(at('2026-03-25T04:00:00Z')).toBe('later'); // 15 days after: the after tier ended
  });

  it('uses each tier its own cadence and RPO; no date is later', () => {
    const tue = new Date('2026-03-03T12:00:00Z'); // a Tuesday out of season
    const week = cadenceFor(wedding('2026-03-05'), tue, cfg);
    expect(week).toMatchObject({ tier: 'week', factor: 1, filesEveryMs: 15 * MIN, rpoMs: 60 * MIN });
    const none = cadenceFor(wedding(undefined), tue, cfg);
    expect(none).toMatchObject({ tier: 'later', filesEveryMs: 1440 * MIN, daysToCeremony: null });
    expect(cadenceFor(wedding('2026-03-01'), tue, cfg)).toMatchObject({
      tier: 'after',
      filesEveryMs: 30 * MIN,
    });
  });
});

describe('season and weekday factors', () => {
  it('raises every tier in the region season, by the region factor', () => {
    const tueJune = new Date('2026-06-02T12:00:00Z');
    const tueJan = new Date('2026-01-06T12:00:00Z');
    const later = wedding('2027-06-01');
    expect(cadenceFor(later, tueJune, cfg)).toMatchObject({
      inSeason: true,
      factor: 2,
      filesEveryMs: 720 * MIN,
    });
    expect(cadenceFor(later, tueJan, cfg)).toMatchObject({ inSeason: false, factor: 1 });
    const south = wedding('2027-06-01', 'Australia/Sydney', 'south');
    expect(cadenceFor(south, tueJan, cfg)).toMatchObject({ region: 'south', inSeason: true, factor: 3 });
    expect(cadenceFor(south, tueJune, cfg)).toMatchObject({ inSeason: false, factor: 1 });
    // an unknown region falls back to the default region
    expect(cadenceFor(wedding('2027-06-01', 'UTC', 'mars'), tueJune, cfg)).toMatchObject({
      region: 'default',
      factor: 2,
    });
  });

  it('raises it again on peak weekdays, read in the wedding zone', () => {
    // Thursday 2026-01-08 23:30 UTC is already Friday in Auckland
    const thuNight = new Date('2026-01-08T23:30:00Z');
    expect(cadenceFor(wedding('2027-06-01'), thuNight, cfg)).toMatchObject({ peakDay: false, factor: 1 });
    const nz = cadenceFor(wedding('2027-06-01', 'Pacific/Auckland'), thuNight, cfg);
    expect(nz).toMatchObject({ peakDay: true, factor: 1.5, databaseEveryMs: 960 * MIN });
    // season and weekday multiply: a June Saturday
    const satJune = cadenceFor(wedding('2026-06-10'), new Date('2026-06-06T12:00:00Z'), cfg);
    expect(satJune).toMatchObject({ tier: 'week', factor: 3, filesEveryMs: 5 * MIN });
  });
});

describe('due and RPO', () => {
  const now = new Date('2026-03-03T12:00:00Z');
  const c = cadenceFor(wedding('2026-03-05'), now, cfg);
  it('is due at once without a backup, else newest plus the interval', () => {
    expect(isDue(c, 'files', undefined, now)).toBe(true);
    expect(isDue(c, 'files', new Date(now.getTime() - 14 * MIN), now)).toBe(false);
    expect(isDue(c, 'files', new Date(now.getTime() - 15 * MIN), now)).toBe(true);
    expect(nextDue(c, 'database', new Date(now.getTime() - 10 * MIN), now)).toEqual(
      new Date(now.getTime() + 50 * MIN),
    );
    expect(rpoMissAt(c, new Date(now.getTime() - 10 * MIN), now)).toEqual(new Date(now.getTime() + 50 * MIN));
  });
});
