/** The schedules table: the catalog's memory of the job schedulers Redis should hold. */
import type { Db } from './db.js';

export interface ScheduleRow {
  id: string;
  queue: 'backup' | 'verify' | 'purge';
  every: number | null;
  pattern: string | null;
  tz: string | null;
  data: Record<string, unknown>;
}

/** The schedules the catalog remembers: what Redis must hold, even after it restarted empty. */
export async function enabledSchedules(db: Db): Promise<ScheduleRow[]> {
  const { rows } = await db.query<ScheduleRow>(
    `SELECT id, queue, every_ms::float8 AS every, pattern, tz, template AS data FROM schedules WHERE enabled ORDER BY id`,
  );
  return rows;
}

export interface ScheduleRecord {
  id: string;
  queue: 'backup' | 'verify' | 'purge';
  every?: number | undefined;
  pattern?: string | undefined;
  tz?: string | undefined;
  data: Record<string, unknown>;
}

export async function recordSchedule(db: Db, s: ScheduleRecord): Promise<void> {
  await db.query(
    `INSERT INTO schedules (id, queue, every_ms, pattern, tz, template) VALUES ($1,$2,$3,$4,$5,$6)
     ON CONFLICT (id) DO UPDATE SET every_ms = $3, pattern = $4, tz = $5, template = $6, updated_at = now()`,
    [s.id, s.queue, s.every ?? null, s.pattern ?? null, s.tz ?? null, JSON.stringify(s.data)],
  );
}
