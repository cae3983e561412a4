/**
 * Rebuilds the catalog's record of what exists (recovery points, their replicas, the weddings
 * backed up) from what the repositories hold: the catalog-lost scenario. Rows already there stay.
 */
import type { Db } from './db.js';
import { pointRow, type BackupRecord } from './record-backup.js';
import { recordPointWeddings, recordRecoveryPoint } from './recovery-points.js';

/** One point as read back from the repositories (engine/repo-points.ts has this shape). */
export interface RebuiltPoint extends BackupRecord {
  type: string;
  operationId?: string | undefined;
  weddingId?: string | undefined;
  /** Targets holding every object of the point, and those holding its snapshot with objects missing. */
  complete: string[];
  incomplete: string[];
}

export async function rebuildCatalog(
  db: Db,
  points: RebuiltPoint[],
  primaryTarget: string,
): Promise<{ points: number; replicas: number; weddings: number }> {
  const before = await counts(db);
  // oldest first: backed_up_weddings keeps the first point that held each wedding
  for (const p of points) {
    // the operation survives only when the catalog did (a partial loss): link it then
    const op = p.operationId
      ? (await db.query(`SELECT 1 FROM backup_operations WHERE id::text = $1`, [p.operationId])).rows[0]
      : undefined;
    await recordRecoveryPoint(
      db,
      pointRow(p, {
        operationId: op ? p.operationId! : null,
        type: p.type,
        weddingId: p.weddingId ?? null,
        primaryTarget: p.complete.includes(primaryTarget) ? primaryTarget : (p.complete[0] ?? primaryTarget),
      }),
    );
    await recordPointWeddings(db, p.snapshotId, p.weddings);
    const size = p.objects.reduce((s, o) => s + o.size, 0);
    for (const [targets, state] of [
      [p.complete, 'replicated'],
      [p.incomplete, 'missing'],
    ] as const)
      for (const target of targets)
        await db.query(
          `INSERT INTO replicas (recovery_point_id, target, state, objects, bytes, checksum)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (recovery_point_id, target) DO NOTHING`,
          [p.snapshotId, target, state, p.objects.length, size, p.checksum],
        );
  }
  const after = await counts(db);
  return {
    points: after.points - before.points,
    replicas: after.replicas - before.replicas,
    weddings: after.weddings - before.weddings,
  };
}

async function counts(db: Db) {
  const { rows } = await db.query<{ points: number; replicas: number; weddings: number }>(
    `SELECT (SELECT count(*)::int FROM recovery_points) AS points, (SELECT count(*)::int FROM replicas) AS replicas,
            (SELECT count(*)::int FROM backed_up_weddings) AS weddings`,
  );
  return rows[0]!;
}
