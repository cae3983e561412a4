/** Repeatable backup schedules as BullMQ job schedulers, mirrored in the catalog's schedules table. */
import type { AppContext } from './context.js';
import { JOBS, QUEUES } from './queues/names.js';
import { PRIORITY } from './queues/priority.js';

export interface ScheduleSpec {
  id: string;
  pattern?: string;
  every?: number;
  tz?: string;
  type: 'full' | 'incremental' | 'files';
}

export const DEFAULT_SCHEDULES: ScheduleSpec[] = [
  { id: 'nightly-full', pattern: '0 2 * * *', tz: 'UTC', type: 'full' },
  { id: 'hourly-files', every: 3_600_000, type: 'files' },
];

export async function installSchedules(ctx: AppContext, specs = DEFAULT_SCHEDULES): Promise<void> {
  const queue = ctx.queues.queues[QUEUES.backup];
  for (const s of specs) {
    const repeat = s.pattern ? { pattern: s.pattern, tz: s.tz } : { every: s.every! };
    await queue.upsertJobScheduler(s.id, repeat, {
      name: JOBS.backup,
      data: { type: s.type, scheduleId: s.id },
      opts: { priority: PRIORITY.later },
    });
    await ctx.db.query(
      `INSERT INTO schedules (id, queue, every_ms, pattern, tz, template) VALUES ($1,$2,$3,$4,$5,$6)
       ON CONFLICT (id) DO UPDATE SET every_ms = $3, pattern = $4, tz = $5, template = $6, updated_at = now()`,
      [
        s.id,
        QUEUES.backup,
        s.every ?? null,
        s.pattern ?? null,
        s.tz ?? null,
        JSON.stringify({ type: s.type }),
      ],
    );
  }
  ctx.log.info({ schedules: specs.map((s) => s.id) }, 'schedules installed');
}
