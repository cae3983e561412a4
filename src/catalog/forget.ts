/** What retention reads of the recovery points, forgotten points' state, and the purge job's runs. */
import type { Db } from './db.js';

export interface RetentionRow {
  id: string;
  type: string;
  createdAt: Date;
  weddingId: string | null;
  parent: string | null;
  /** What the operation asked for ([]: the type's default); null for a point without an operation. */
  components: string[] | null;
}

/** Every point not yet forgotten, newest first. */
export async function listRetentionRows(db: Db): Promise<RetentionRow[]> {
  const { rows } = await db.query(
    `SELECT p.id, p.type, p.created_at, p.wedding_id, p.summary->>'parent' AS parent, o.components
       FROM recovery_points p LEFT JOIN backup_operations o ON o.id = p.operation_id
      WHERE p.deleted_at IS NULL
      ORDER BY p.created_at DESC, p.id DESC`,
  );
  return rows.map((r) => ({
    id: r.id,
    type: r.type,
    createdAt: r.created_at,
    weddingId: r.wedding_id,
    parent: r.parent,
    components: r.components,
  }));
}

/**
 * Marks points forgotten (listings leave them out from now on), except a point a hold placed since
 * the plan names; returns the ids this call marked.
 */
export async function markForgotten(db: Db, points: { id: string; reason: string }[]): Promise<string[]> {
  if (points.length === 0) return [];
  const { rows } = await db.query<{ id: string }>(
    `UPDATE recovery_points p SET deleted_at = now(), forget_reason = f.reason
       FROM unnest($1::text[], $2::text[]) AS f(id, reason)
      WHERE p.id = f.id AND p.deleted_at IS NULL
        AND NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.recovery_point_id = p.id
                          AND h.released_at IS NULL AND (h.until IS NULL OR h.until > now()))
      RETURNING p.id`,
    [points.map((p) => p.id), points.map((p) => p.reason)],
  );
  return rows.map((r) => r.id);
}

/** Forgotten points whose repository snapshots are not yet gone from every target. */
export async function listForgottenWithSnapshots(db: Db): Promise<{ id: string; primaryTarget: string }[]> {
  const { rows } = await db.query(
    `SELECT id, primary_target FROM recovery_points
      WHERE deleted_at IS NOT NULL AND snapshots_removed_at IS NULL ORDER BY deleted_at, id`,
  );
  return rows.map((r) => ({ id: r.id, primaryTarget: r.primary_target }));
}

export async function markSnapshotsRemoved(db: Db, id: string): Promise<void> {
  await db.query('UPDATE recovery_points SET snapshots_removed_at = now() WHERE id = $1', [id]);
}

export async function startPurgeRun(db: Db, id: string, jobId: string | undefined): Promise<void> {
  await db.query(
    `INSERT INTO purge_runs (id, job_id) VALUES ($1, $2)
     ON CONFLICT (id) DO UPDATE SET state = 'running', error = NULL, finished_at = NULL`,
    [id, jobId ?? null],
  );
}

export async function finishPurgeRun(
  db: Db,
  id: string,
  result: { forgotten: unknown[]; kept: number } | { error: string },
): Promise<void> {
  if ('error' in result) {
    await db.query(`UPDATE purge_runs SET state = 'failed', error = $2, finished_at = now() WHERE id = $1`, [
      id,
      JSON.stringify({ message: result.error }),
    ]);
    return;
  }
  await db.query(
    `UPDATE purge_runs SET state = 'completed', forgotten = $2, kept = $3, finished_at = now() WHERE id = $1`,
    [id, JSON.stringify(result.forgotten), result.kept],
  );
}
