import { describe, expect, it } from 'vitest';
import { daysUntil, priorityFor, PRIORITY, tierFor } from '../../src/queues/priority.js';

const now = new Date('2026-06-01T12:00:00Z');

describe('priority from ceremony date', () => {
  it.each([
    ['2026-06-01', 'week'],
    ['2026-06-08', 'week'], // 7 days
    ['2026-06-09', 'month'], // 8 days
    ['2026-07-01', 'month'], // 30 days
    ['2026-07-02', 'quarter'], // 31 days
    ['2026-08-30', 'quarter'], // 90 days
    ['2026-08-31', 'later'], // 91 days
    ['2027-06-01', 'later'],
    ['2026-05-31', 'after'], // the day after
    ['2026-05-18', 'after'], // 14 days after
    ['2026-05-17', 'later'], // 15 days after: the after tier has ended
  ] as const)('%s is tier %s', (date, tier) => {
    expect(tierFor(date, now)).toBe(tier);
  });

  it('orders tiers: nearer weddings get lower (sooner) numbers', () => {
    expect(priorityFor('2026-06-03', now)).toBeLessThan(priorityFor('2026-06-20', now));
    expect(priorityFor('2026-06-20', now)).toBeLessThan(priorityFor('2026-08-01', now));
    expect(priorityFor('2026-08-01', now)).toBeLessThan(priorityFor('2027-01-01', now));
    expect(priorityFor(undefined, now)).toBe(PRIORITY.later);
    expect(PRIORITY.later).toBeLessThan(PRIORITY.maintenance);
  });

  it('counts days in the wedding time zone, not the server clock', () => {
    // 23:30 UTC on 1 June is already 2 June in Auckland and still 1 June in Los Angeles.
    const late = new Date('2026-06-01T23:30:00Z');
    expect(daysUntil('2026-06-09', late, 'UTC')).toBe(8);
    expect(daysUntil('2026-06-09', late, 'Pacific/Auckland')).toBe(7);
    expect(daysUntil('2026-06-09', late, 'America/Los_Angeles')).toBe(8);
    expect(tierFor('2026-06-09', late, 'Pacific/Auckland')).toBe('week');
    expect(tierFor('2026-06-09', late, 'UTC')).toBe('month');
  });

  it('accepts timestamps and dates alike', () => {
    expect(daysUntil(new Date('2026-06-06T18:00:00Z'), now)).toBe(5);
    expect(daysUntil('2026-06-06T00:00:00+00:00', now)).toBe(5);
  });
});
