/** Restores requested through the service: what they aimed at, where from, where to, how long, and how they ended. */
import type { Db, Queryable } from './db.js';

export type RecoveryState = 'queued' | 'running' | 'completed' | 'failed';

export interface NewRecovery {
  id: string;
  targetTime?: string | undefined;
  targetLsn?: string | undefined;
  restorePoint?: string | undefined;
  inclusive?: boolean | undefined;
  weddingId?: string | undefined;
  components?: string[] | undefined;
  targetDatabase?: string | undefined;
  mode?: 'new' | 'merge' | undefined;
  dryRun?: boolean | undefined;
  recoveryPointId?: string | undefined;
  planId?: string | undefined;
  scenario?: string | undefined;
}

export interface Recovery extends Required<Pick<NewRecovery, 'id'>> {
  state: RecoveryState;
  targetTime: Date | null;
  targetLsn: string | null;
  restorePoint: string | null;
  inclusive: boolean;
  mode: 'new' | 'merge';
  dryRun: boolean;
  weddingId: string | null;
  components: string[];
  targetDatabase: string | null;
  recoveryPointId: string | null;
  basePoint: { id: string; time: string; lsn: string } | null;
  progress: number;
  step: string | null;
  achievedRpoS: number | null;
  validation: unknown;
  result: unknown;
  error: { code: string; message: string } | null;
  planId: string | null;
  scenario: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  durationMs: number | null;
}

/** A queued recovery's row; inserted in the transaction that enqueues its job (producers/recovery.ts). */
export async function createRecovery(q: Queryable, r: NewRecovery): Promise<void> {
  await q.query(
    `INSERT INTO recoveries (id, state, target_time, target_lsn, restore_point, inclusive, wedding_id,
       components, target_database, mode, dry_run, recovery_point_id, plan_id, scenario)
     VALUES ($1, 'queued', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
    [
      r.id,
      r.targetTime ?? null,
      r.targetLsn ?? null,
      r.restorePoint ?? null,
      r.inclusive ?? true,
      r.weddingId ?? null,
      JSON.stringify(r.components ?? []),
      r.targetDatabase ?? null,
      r.mode ?? 'new',
      r.dryRun ?? false,
      r.recoveryPointId ?? null,
      r.planId ?? null,
      r.scenario ?? null,
    ],
  );
}

export async function startRecovery(db: Db, id: string, recoveryPointId: string | null): Promise<void> {
  await db.query(
    `INSERT INTO recoveries (id, state, recovery_point_id, started_at) VALUES ($1, 'running', $2, now())
     ON CONFLICT (id) DO UPDATE SET state = 'running', started_at = now(),
       recovery_point_id = coalesce($2, recoveries.recovery_point_id)`,
    [id, recoveryPointId],
  );
}

export async function recordRecoveryProgress(
  db: Db,
  id: string,
  progress: number,
  step: string,
): Promise<void> {
  await db.query(`UPDATE recoveries SET progress = $2, step = $3 WHERE id = $1 AND state = 'running'`, [
    id,
    progress,
    step,
  ]);
}

export async function finishRecovery(
  db: Db,
  id: string,
  state: 'completed' | 'failed',
  details: {
    validation?: unknown;
    error?: { code: string; message: string };
    result?: unknown;
    basePoint?: { id: string; time: string; lsn: string };
    achievedRpoS?: number;
  },
): Promise<void> {
  await db.query(
    `UPDATE recoveries SET state = $2, progress = CASE WHEN $2 = 'completed' THEN 1 ELSE progress END,
        validation = $3, error = $4, result = $5, base_point = coalesce($6, base_point),
        recovery_point_id = coalesce($6::jsonb ->> 'id', recovery_point_id),
        achieved_rpo_s = coalesce($7, achieved_rpo_s), finished_at = now(),
        duration_ms = (extract(epoch FROM now() - coalesce(started_at, created_at)) * 1000)::bigint
      WHERE id = $1`,
    [
      id,
      state,
      JSON.stringify(details.validation ?? null),
      JSON.stringify(details.error ?? null),
      JSON.stringify(details.result ?? null),
      details.basePoint ? JSON.stringify(details.basePoint) : null,
      details.achievedRpoS ?? null,
    ],
  );
}

const COLUMNS = `id, state, target_time AS "targetTime", target_lsn AS "targetLsn",
  restore_point AS "restorePoint", inclusive, mode, dry_run AS "dryRun", wedding_id AS "weddingId",
  components, target_database AS "targetDatabase", recovery_point_id AS "recoveryPointId",
  base_point AS "basePoint", progress, step, achieved_rpo_s AS "achievedRpoS", validation, result,
  error, plan_id AS "planId", scenario, created_at AS "createdAt", started_at AS "startedAt",
  finished_at AS "finishedAt", duration_ms::float8 AS "durationMs"`;

export async function getRecovery(db: Queryable, id: string): Promise<Recovery | undefined> {
  const { rows } = await db.query<Recovery>(`SELECT ${COLUMNS} FROM recoveries WHERE id = $1`, [id]);
  return rows[0];
}

/** The newest recoveries of a scenario (or of any), for RTO estimates. */
export async function listRecoveries(
  db: Db,
  f: { scenario?: string; limit?: number } = {},
): Promise<Recovery[]> {
  const { rows } = await db.query<Recovery>(
    `SELECT ${COLUMNS} FROM recoveries WHERE ($1::text IS NULL OR scenario = $1) ORDER BY created_at DESC LIMIT $2`,
    [f.scenario ?? null, f.limit ?? 50],
  );
  return rows;
}
