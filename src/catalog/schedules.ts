/** The schedules table: the catalog's memory of the job schedulers Redis should hold. */
import type { Db } from './db.js';

export interface ScheduleRow {
  id: string;
  queue: 'backup' | 'verify' | 'purge' | 'plan' | 'restore';
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
  queue: 'backup' | 'verify' | 'purge' | 'plan' | 'restore';
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

export interface ScheduleListing extends ScheduleRow {
  enabled: boolean;
  editedBy: string | null;
  editedAt: Date | null;
  updatedAt: Date;
}

export async function listSchedules(db: Db): Promise<ScheduleListing[]> {
  const { rows } = await db.query<ScheduleListing>(
    `SELECT id, queue, every_ms::float8 AS every, pattern, tz, template AS data, enabled,
            edited_by AS "editedBy", edited_at AS "editedAt", updated_at AS "updatedAt"
       FROM schedules ORDER BY id`,
  );
  return rows;
}

/**
 * The start-up rebuild's write: a new row, or the defaults and config refreshed in a row nobody
 * edited through the API (an edit outlives restarts until the row is edited again).
 */
export async function seedSchedule(db: Db, s: ScheduleRecord): Promise<void> {
  await db.query(
    `INSERT INTO schedules (id, queue, every_ms, pattern, tz, template) VALUES ($1,$2,$3,$4,$5,$6)
     ON CONFLICT (id) DO UPDATE SET every_ms = $3, pattern = $4, tz = $5, template = $6, updated_at = now()
      WHERE schedules.edited_at IS NULL
        AND (schedules.every_ms, schedules.pattern, schedules.tz, schedules.template)
            IS DISTINCT FROM ($3::bigint, $4::text, $5::text, $6::jsonb)`,
    [s.id, s.queue, s.every ?? null, s.pattern ?? null, s.tz ?? null, JSON.stringify(s.data)],
  );
}

export interface ScheduleEdit {
  pattern?: string | undefined;
  every?: number | undefined;
  tz?: string | undefined;
  enabled?: boolean | undefined;
}

/** An API edit: returns the row after it, undefined for an unknown id. A pattern replaces `every` and back. */
export async function editSchedule(
  db: Db,
  id: string,
  edit: ScheduleEdit,
  by: string | undefined,
): Promise<ScheduleListing | undefined> {
  const { rowCount } = await db.query(
    `UPDATE schedules SET
        pattern = CASE WHEN $2::text IS NOT NULL THEN $2 WHEN $3::bigint IS NOT NULL THEN NULL ELSE pattern END,
        every_ms = CASE WHEN $3::bigint IS NOT NULL THEN $3 WHEN $2::text IS NOT NULL THEN NULL ELSE every_ms END,
        tz = coalesce($4, tz), enabled = coalesce($5, enabled),
        edited_by = $6, edited_at = now(), updated_at = now()
      WHERE id = $1`,
    [id, edit.pattern ?? null, edit.every ?? null, edit.tz ?? null, edit.enabled ?? null, by ?? null],
  );
  if (!rowCount) return undefined;
  return getSchedule(db, id);
}

export async function getSchedule(db: Db, id: string): Promise<ScheduleListing | undefined> {
  return (await listSchedules(db)).find((s) => s.id === id);
}

/** Replaces one key of a schedule's template (the planner's tier overrides live in its `tiers`). */
export async function setScheduleTemplateKey(db: Db, id: string, key: string, value: unknown): Promise<void> {
  await db.query(
    `UPDATE schedules SET template = jsonb_set(template, ARRAY[$2::text], $3::jsonb), updated_at = now() WHERE id = $1`,
    [id, key, JSON.stringify(value)],
  );
}
