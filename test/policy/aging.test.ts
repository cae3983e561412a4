// The aging decision with a fixed clock: who is past its tier's bound, in what order.
import { expect, it } from 'vitest';
import { agingBoundsMs, type LoadTier } from '../../src/config/index.js';
import { DEFAULT_TIERS } from '../../src/config/scheduling.js';
import { agingDecision } from '../../src/policy/aging.js';
import { PRIORITY } from '../../src/queues/priority.js';

const MIN = 60_000;
const now = Date.parse('2026-06-12T19:00:00Z');
const bounds: Record<LoadTier, number> = agingBoundsMs(
  { boundMinutes: { later: 120 }, sweepSeconds: 30 },
  undefined,
);

it('takes the configured bound per tier, else half the slack between the tier’s RPO and cadence', () => {
  expect(bounds).toMatchObject({ later: 120 * MIN, maintenance: 1440 * MIN });
  const derived = agingBoundsMs({ boundMinutes: {}, sweepSeconds: 30 }, DEFAULT_TIERS);
  const { week, month, quarter, later, after } = DEFAULT_TIERS;
  expect(derived.week).toBe(((week.rpoMinutes - week.filesEveryMinutes) / 2) * MIN);
  expect(derived.later).toBe(((later.rpoMinutes - later.databaseEveryMinutes) / 2) * MIN);
  for (const [tier, c] of Object.entries({ week, month, quarter, later, after })) {
    // an aged job still has room inside the RPO after its shortest cadence
    expect(derived[tier as LoadTier]).toBeLessThan(
      (c.rpoMinutes - Math.min(c.filesEveryMinutes, c.databaseEveryMinutes)) * MIN,
    );
  }
});

it('promotes jobs past their tier’s bound, most overdue first, and leaves the rest', () => {
  const jobs = [
    { id: 'week-fresh', priority: PRIORITY.week, dueAt: now - 14 * MIN },
    { id: 'week-late', priority: PRIORITY.week, dueAt: now - 17 * MIN },
    { id: 'later-at-bound', priority: PRIORITY.later, dueAt: now - 120 * MIN },
    { id: 'later-over', priority: PRIORITY.later, dueAt: now - 200 * MIN },
    { id: 'already-aged', priority: 0, dueAt: now - 10_000 * MIN },
    { id: 'odd-priority', priority: 9, dueAt: now - 121 * MIN },
    { id: 'not-yet-due', priority: PRIORITY.later, dueAt: now + 60 * MIN },
  ];
  expect(agingDecision(jobs, now, bounds)).toEqual([
    { id: 'later-over', tier: 'later', waitedMs: 200 * MIN },
    { id: 'week-late', tier: 'week', waitedMs: 17 * MIN },
    { id: 'odd-priority', tier: 'later', waitedMs: 121 * MIN },
  ]);
});

it('the same jobs an hour earlier: nothing is overdue', () => {
  const jobs = [{ id: 'later-over', priority: PRIORITY.later, dueAt: now - 100 * MIN }];
  expect(agingDecision(jobs, now, bounds)).toEqual([]);
  expect(agingDecision(jobs, now + 21 * MIN, bounds).map((p) => p.id)).toEqual(['later-over']);
});
