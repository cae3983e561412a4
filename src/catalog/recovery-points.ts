/** Recovery points (one per completed backup) and their replicas on each target. */
import type { Db } from './db.js';

export interface RecoveryPoint {
  id: string;
  operationId: string | null;
  type: string;
  weddingId: string | null;
  primaryTarget: string;
  createdAt: Date;
  consistentTime: Date | null;
  lsn: string | null;
  files: number;
  bytesRead: number;
  bytesNew: number;
  bytesStored: number;
  /** Every repository object the point needs, with its size: what replication copies and verify checks. */
  objects: { key: string; size: number }[];
  checksum: string;
  summary: Record<string, unknown>;
  healthy: boolean;
}

/** unverified: its target was found to have lost its data; not counted as a copy until verified again. */
export type ReplicaState = 'pending' | 'replicated' | 'verified' | 'failed' | 'missing' | 'unverified';

export interface Replica {
  recoveryPointId: string;
  target: string;
  state: ReplicaState;
  objects: number;
  bytes: number;
  copiedObjects: number;
  copiedBytes: number;
  checksum: string | null;
  error: string | null;
  replicatedAt: Date | null;
  verifiedAt: Date | null;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
const toPoint = (r: any): RecoveryPoint => ({
  id: r.id,
  operationId: r.operation_id,
  type: r.type,
  weddingId: r.wedding_id,
  primaryTarget: r.primary_target,
  createdAt: r.created_at,
  consistentTime: r.consistent_time,
  lsn: r.lsn,
  files: r.files,
  bytesRead: Number(r.bytes_read),
  bytesNew: Number(r.bytes_new),
  bytesStored: Number(r.bytes_stored),
  objects: r.objects,
  checksum: r.checksum,
  summary: r.summary,
  healthy: r.healthy,
});

const toReplica = (r: any): Replica => ({
  recoveryPointId: r.recovery_point_id,
  target: r.target,
  state: r.state,
  objects: r.objects,
  bytes: Number(r.bytes),
  copiedObjects: r.copied_objects,
  copiedBytes: Number(r.copied_bytes),
  checksum: r.checksum,
  error: r.error,
  replicatedAt: r.replicated_at,
  verifiedAt: r.verified_at,
});
/* eslint-enable @typescript-eslint/no-explicit-any */

/** Inserts the point unless this operation already produced one; returns the point that stands. */
export async function recordRecoveryPoint(
  db: Db,
  p: Omit<RecoveryPoint, 'createdAt' | 'healthy'>,
): Promise<RecoveryPoint> {
  const { rows } = await db.query(
    `INSERT INTO recovery_points (id, operation_id, type, wedding_id, primary_target, consistent_time, lsn, files,
        bytes_read, bytes_new, bytes_stored, objects, checksum, summary)
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)
     ON CONFLICT DO NOTHING RETURNING *`,
    [
      p.id,
      p.operationId,
      p.type,
      p.weddingId,
      p.primaryTarget,
      p.consistentTime,
      p.lsn,
      p.files,
      p.bytesRead,
      p.bytesNew,
      p.bytesStored,
      JSON.stringify(p.objects),
      p.checksum,
      JSON.stringify(p.summary),
    ],
  );
  if (rows[0]) return toPoint(rows[0]);
  const existing = await db.query('SELECT * FROM recovery_points WHERE operation_id = $1 OR id = $2', [
    p.operationId,
    p.id,
  ]);
  return toPoint(existing.rows[0]);
}

export async function getRecoveryPoint(db: Db, id: string): Promise<RecoveryPoint | undefined> {
  const { rows } = await db.query('SELECT * FROM recovery_points WHERE id = $1 AND deleted_at IS NULL', [id]);
  return rows[0] && toPoint(rows[0]);
}

export interface PointFilter {
  weddingId?: string;
  since?: Date;
  until?: Date;
  types?: string[] | undefined;
  limit?: number;
  /** Keyset paging: only points after this one in the list's order (newest first). */
  after?: string | undefined;
}

export async function listRecoveryPoints(db: Db, f: PointFilter = {}): Promise<RecoveryPoint[]> {
  const { rows } = await db.query(
    `SELECT * FROM recovery_points
      WHERE deleted_at IS NULL
        AND ($1::text IS NULL OR wedding_id = $1)
        AND ($2::timestamptz IS NULL OR created_at >= $2)
        AND ($3::timestamptz IS NULL OR created_at <= $3)
        AND ($5::text[] IS NULL OR type = ANY($5))
        -- the cursor's time is read here, not sent: a JS Date would drop its microseconds
        AND ($6::text IS NULL OR (created_at, id) < (SELECT created_at, id FROM recovery_points WHERE id = $6))
      ORDER BY created_at DESC, id DESC LIMIT $4`,
    [f.weddingId ?? null, f.since ?? null, f.until ?? null, f.limit ?? 500, f.types ?? null, f.after ?? null],
  );
  return rows.map(toPoint);
}

export async function upsertReplica(
  db: Db,
  r: Pick<Replica, 'recoveryPointId' | 'target' | 'state'> & Partial<Replica>,
): Promise<void> {
  // the casts: COALESCE with a literal 0 would make the byte counts integer (over 2 GiB fails)
  await db.query(
    `INSERT INTO replicas (recovery_point_id, target, state, objects, bytes, copied_objects, copied_bytes, checksum, error,
        replicated_at, verified_at)
     VALUES ($1,$2,$3,COALESCE($4::integer,0),COALESCE($5::bigint,0),COALESCE($6::integer,0),COALESCE($7::bigint,0),$8,$9,
        CASE WHEN $3 IN ('replicated','verified') THEN now() END, CASE WHEN $3 = 'verified' THEN now() END)
     ON CONFLICT (recovery_point_id, target) DO UPDATE SET
        state = EXCLUDED.state,
        objects = COALESCE($4, replicas.objects),
        bytes = COALESCE($5, replicas.bytes),
        copied_objects = COALESCE($6, replicas.copied_objects),
        copied_bytes = COALESCE($7, replicas.copied_bytes),
        checksum = COALESCE($8, replicas.checksum),
        error = $9,
        replicated_at = COALESCE(replicas.replicated_at, EXCLUDED.replicated_at),
        verified_at = COALESCE(EXCLUDED.verified_at, replicas.verified_at),
        updated_at = now()`,
    [
      r.recoveryPointId,
      r.target,
      r.state,
      r.objects ?? null,
      r.bytes ?? null,
      r.copiedObjects ?? null,
      r.copiedBytes ?? null,
      r.checksum ?? null,
      r.error ?? null,
    ],
  );
}

export async function listReplicas(db: Db, pointIds: string[]): Promise<Replica[]> {
  if (pointIds.length === 0) return [];
  const { rows } = await db.query(
    'SELECT * FROM replicas WHERE recovery_point_id = ANY($1) ORDER BY target',
    [pointIds],
  );
  return rows.map(toReplica);
}

/** The points not forgotten, with the objects they name (an erasure refreshes these lists). */
export async function listLivePoints(db: Db): Promise<{ id: string; objects: { key: string }[] }[]> {
  const { rows } = await db.query<{ id: string; objects: { key: string }[] }>(
    'SELECT id, objects FROM recovery_points WHERE deleted_at IS NULL ORDER BY created_at',
  );
  return rows;
}

/** A point's objects as the repository now needs them (an erasure rewrote the key objects). */
export async function updatePointObjects(
  db: Db,
  id: string,
  objects: { key: string; size: number }[],
  checksum: string,
): Promise<void> {
  await db.query('UPDATE recovery_points SET objects = $2, checksum = $3 WHERE id = $1', [
    id,
    JSON.stringify(objects),
    checksum,
  ]);
}

export async function markPointHealth(db: Db, id: string, healthy: boolean): Promise<void> {
  await db.query('UPDATE recovery_points SET healthy = $2 WHERE id = $1', [id, healthy]);
}

/**
 * The target lost its data: no copy on it can be counted any more, for any point. Returns the number
 * of replicas changed; the next verify of each point re-establishes the ones still sound.
 */
export async function markTargetUnverified(db: Db, target: string, reason: string): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE replicas SET state = 'unverified', error = $2, updated_at = now()
      WHERE target = $1 AND state IN ('replicated', 'verified')`,
    [target, reason.slice(0, 2000)],
  );
  return rowCount ?? 0;
}

/** Remembers the weddings a point holds; only those not seen before are written. */
export async function recordPointWeddings(
  db: Db,
  recoveryPointId: string,
  weddingIds: string[],
): Promise<void> {
  if (weddingIds.length === 0) return;
  await db.query(
    `INSERT INTO backed_up_weddings (wedding_id, recovery_point_id)
     SELECT id, $2 FROM unnest($1::text[]) AS id ON CONFLICT (wedding_id) DO NOTHING`,
    [weddingIds, recoveryPointId],
  );
}

/** Whether any recovery point holds this wedding: one taken of it alone, or a database backup that held it. */
export async function weddingHasPoints(db: Db, weddingId: string): Promise<boolean> {
  const { rows } = await db.query(
    `SELECT 1 FROM recovery_points WHERE wedding_id = $1
     UNION ALL SELECT 1 FROM backed_up_weddings WHERE wedding_id = $1 LIMIT 1`,
    [weddingId],
  );
  return rows.length > 0;
}

/** Points whose last verification or drill failed (deleted ones aside). */
export async function countUnhealthyPoints(db: Db): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM recovery_points WHERE NOT healthy AND deleted_at IS NULL',
  );
  return rows[0]!.n;
}

/** The schema digest of the newest other point that recorded one: a new digest means the schema changed. */
export async function previousSchemaDigest(db: Db, pointId: string): Promise<string | null | undefined> {
  const { rows } = await db.query<{ d: string | null }>(
    `SELECT summary->>'schemaDigest' AS d FROM recovery_points
      WHERE id <> $1 AND summary ? 'schemaDigest' AND summary->>'schemaDigest' IS NOT NULL
      ORDER BY created_at DESC LIMIT 1`,
    [pointId],
  );
  return rows[0]?.d;
}
