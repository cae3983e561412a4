/** Repeatable backup schedules as BullMQ job schedulers, mirrored in the catalog's schedules table. */
import { recordSchedule } from '../catalog/schedules.js';
import type { AppContext } from '../context.js';
import { JOBS, QUEUES } from '../queues/names.js';
import { PRIORITY } from '../queues/priority.js';

export interface ScheduleSpec {
  id: string;
  pattern?: string;
  every?: number;
  tz?: string;
  queue: 'backup' | 'verify' | 'purge';
  data: Record<string, unknown>;
}

export const DEFAULT_SCHEDULES: ScheduleSpec[] = [
  { id: 'nightly-full', pattern: '0 2 * * *', tz: 'UTC', queue: 'backup', data: { type: 'full' } },
  { id: 'hourly-files', every: 3_600_000, queue: 'backup', data: { type: 'files' } },
  // full read-back of the newest point on every target, and a real restore drill, each weekly
  { id: 'weekly-full-verify', pattern: '0 4 * * 0', tz: 'UTC', queue: 'verify', data: { mode: 'full' } },
  { id: 'weekly-drill', pattern: '0 5 * * 0', tz: 'UTC', queue: 'verify', data: { mode: 'drill' } },
  // forget what the retention policy lets go (nothing without a policy), after the nightly full
  { id: 'daily-purge', pattern: '0 3 * * *', tz: 'UTC', queue: 'purge', data: { reason: 'retention' } },
];

export async function installSchedules(ctx: AppContext, specs = DEFAULT_SCHEDULES): Promise<void> {
  for (const s of specs) {
    const repeat = s.pattern ? { pattern: s.pattern, tz: s.tz } : { every: s.every! };
    await ctx.queues.queues[QUEUES[s.queue]].upsertJobScheduler(s.id, repeat, {
      name: JOBS[s.queue],
      data: { ...s.data, scheduleId: s.id },
      opts: { priority: s.queue === 'backup' ? PRIORITY.later : PRIORITY.maintenance },
    });
    await recordSchedule(ctx.db, s);
  }
  ctx.log.info({ schedules: specs.map((s) => s.id) }, 'schedules installed');
}
