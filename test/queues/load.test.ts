// Which jobs load management may hold back, and which count as heavy.
import { expect, it } from 'vitest';
import { isHeavy, isScheduledWork, tierOfPriority } from '../../src/queues/load.js';
import { PRIORITY } from '../../src/queues/priority.js';

it('holds back scheduled and event work, never on-demand work', () => {
  expect(isScheduledWork({ trigger: 'demand', scheduleId: 'x' })).toBe(false);
  expect(isScheduledWork({ trigger: 'schedule' })).toBe(true);
  expect(isScheduledWork({ trigger: 'event' })).toBe(true);
  expect(isScheduledWork({ scheduleId: 'nightly-full' })).toBe(true); // a job scheduler's template
  expect(isScheduledWork({ recoveryPointId: 'p', mode: 'quick' })).toBe(false); // a follow-up
  expect(isScheduledWork(undefined)).toBe(false);
});

it('heavy: full backups, full verification, drills, purges', () => {
  expect(isHeavy('backup', { type: 'full' })).toBe(true);
  expect(isHeavy('backup', { type: 'incremental' })).toBe(false);
  expect(isHeavy('backup', { type: 'files' })).toBe(false);
  expect(isHeavy('verify', { mode: 'full' })).toBe(true);
  expect(isHeavy('verify', { mode: 'drill' })).toBe(true);
  expect(isHeavy('verify', { mode: 'quick' })).toBe(false);
  expect(isHeavy('purge', {})).toBe(true);
  expect(isHeavy('replicate', {})).toBe(false);
});

it('a priority’s tier; an aged job (0) has none', () => {
  expect(tierOfPriority(PRIORITY.week)).toBe('week');
  expect(tierOfPriority(PRIORITY.maintenance)).toBe('maintenance');
  expect(tierOfPriority(0)).toBeUndefined();
  expect(tierOfPriority(undefined)).toBeUndefined();
});
