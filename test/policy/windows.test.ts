// Off-peak windows with a fixed clock: two zones, a window across midnight, both DST changes, and the RPO override.
import { describe, expect, it } from 'vitest';
import { resolveScheduling, schedulingSchema } from '../../src/config/scheduling.js';
import { inWindow, mayRunHeavy, nextWindowStart, zonedInstant } from '../../src/policy/windows.js';

const cfg = resolveScheduling(
  schedulingSchema.parse({
    offPeak: {
      database: { tz: 'Europe/London', windows: [{ start: '00:30', end: '04:00' }] },
      media: { tz: 'America/New_York', windows: [{ start: '22:00', end: '06:00', days: ['sat'] }] },
    },
  }),
);
const london = cfg.offPeak.database!;
const newYork = cfg.offPeak.media!;
const at = (iso: string) => new Date(iso);

describe('windows in two time zones', () => {
  it('reads London windows on London clocks, in winter and in summer', () => {
    expect(inWindow(at('2026-01-15T00:30:00Z'), london)).toBe(true);
    expect(inWindow(at('2026-01-15T03:59:00Z'), london)).toBe(true);
    expect(inWindow(at('2026-01-15T04:00:00Z'), london)).toBe(false);
    expect(inWindow(at('2026-07-15T03:30:00Z'), london)).toBe(false); // 04:30 BST
    expect(inWindow(at('2026-07-14T23:30:00Z'), london)).toBe(true); // 00:30 BST
  });

  it('keeps a window across midnight to the day it starts on, in New York', () => {
    expect(inWindow(at('2026-06-07T02:30:00Z'), newYork)).toBe(true); // Sat 22:30 EDT
    expect(inWindow(at('2026-06-07T09:59:00Z'), newYork)).toBe(true); // Sun 05:59 EDT
    expect(inWindow(at('2026-06-07T10:00:00Z'), newYork)).toBe(false); // Sun 06:00
    expect(inWindow(at('2026-06-08T02:30:00Z'), newYork)).toBe(false); // Sun 22:30: no window starts Sunday
    expect(nextWindowStart(at('2026-06-08T02:30:00Z'), newYork)).toEqual(at('2026-06-14T02:00:00Z'));
  });
});

describe('daylight-saving changes', () => {
  it('moves the window by an hour in UTC when London springs forward', () => {
    expect(inWindow(at('2026-03-28T03:30:00Z'), london)).toBe(true); // 03:30 GMT
    expect(inWindow(at('2026-03-29T03:30:00Z'), london)).toBe(false); // 04:30 BST
    expect(inWindow(at('2026-03-29T02:30:00Z'), london)).toBe(true); // 03:30 BST
    expect(nextWindowStart(at('2026-03-29T12:00:00Z'), london)).toEqual(at('2026-03-29T23:30:00Z'));
    expect(nextWindowStart(at('2026-03-28T12:00:00Z'), london)).toEqual(at('2026-03-29T00:30:00Z'));
  });

  it('opens a window at the first of two repeated times, and past a skipped one', () => {
    // 01:30 happens twice in London on 25 Oct 2026 (BST, then GMT): the first is 00:30 UTC
    expect(zonedInstant(2026, 10, 25, 90, 'Europe/London')).toEqual(at('2026-10-25T00:30:00Z'));
    // 01:30 never happens on 29 Mar 2026: the clocks jump from 01:00 GMT to 02:00 BST
    expect(zonedInstant(2026, 3, 29, 90, 'Europe/London')).toEqual(at('2026-03-29T01:00:00Z'));
    expect(zonedInstant(2026, 3, 8, 120, 'America/New_York')).toEqual(at('2026-03-08T07:00:00Z'));
  });
});

describe('may heavy work run now?', () => {
  const noon = at('2026-01-15T12:00:00Z');
  it('holds it until the window opens, and says when', () => {
    const v = mayRunHeavy({ kind: 'full-backup', source: 'database', now: noon }, cfg);
    expect(v.run).toBe(false);
    expect(v.retryAt).toEqual(at('2026-01-16T00:30:00Z'));
    expect(v.reason).toMatch(/held until the off-peak window of database opens/);
    expect(mayRunHeavy({ kind: 'prune', source: 'database', now: at('2026-01-16T01:00:00Z') }, cfg).run).toBe(
      true,
    );
  });

  it('runs it anyway, saying why, when a wedding RPO would be missed first', () => {
    const soon = at('2026-01-15T18:00:00Z');
    const v = mayRunHeavy(
      { kind: 'full-backup', source: 'database', now: noon, rpoMissAt: soon, weddingId: 'w7' },
      cfg,
    );
    expect(v).toMatchObject({ run: true });
    expect(v.reason).toMatch(
      /wedding w7's RPO would be missed at 2026-01-15T18:00:00.000Z, before the next window/,
    );
    const late = at('2026-01-17T00:00:00Z');
    expect(
      mayRunHeavy({ kind: 'full-backup', source: 'database', now: noon, rpoMissAt: late }, cfg).run,
    ).toBe(false);
  });

  it('runs anywhere for a source without windows', () => {
    expect(mayRunHeavy({ kind: 'drill', source: 'photos', now: noon }, cfg)).toMatchObject({ run: true });
  });
});
