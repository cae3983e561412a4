/** Backup operations: one row per requested backup, moved through queued → running → completed|failed. */
import type { Db, Queryable } from './db.js';

export type OperationState = 'queued' | 'running' | 'completed' | 'failed';
export type BackupType = 'full' | 'incremental' | 'files';

export interface Operation {
  id: string;
  type: BackupType;
  state: OperationState;
  priority: number;
  weddingId: string | null;
  components: string[];
  recoveryPointId: string | null;
  progress: number;
  bytes: number;
  error: { code: string; message: string } | null;
  followUps: { queue: string; jobId: string; target?: string }[];
  attempts: number;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

interface Row {
  id: string;
  type: BackupType;
  state: OperationState;
  priority: number;
  wedding_id: string | null;
  components: string[];
  recovery_point_id: string | null;
  progress: number;
  bytes: string;
  error: Operation['error'];
  follow_ups: Operation['followUps'];
  attempts: number;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

const toOperation = (r: Row): Operation => ({
  id: r.id,
  type: r.type,
  state: r.state,
  priority: r.priority,
  weddingId: r.wedding_id,
  components: r.components,
  recoveryPointId: r.recovery_point_id,
  progress: r.progress,
  bytes: Number(r.bytes),
  error: r.error,
  followUps: r.follow_ups,
  attempts: r.attempts,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
});

export async function createOperation(
  db: Queryable,
  op: {
    id: string;
    type: BackupType;
    priority: number;
    weddingId?: string | undefined;
    components?: string[];
    requestedBy?: string | undefined;
    /** The API key that asked and a digest of what it asked (see catalog/requests.ts). */
    apiKeyId?: string | undefined;
    requestHash?: string | undefined;
  },
): Promise<void> {
  await db.query(
    `INSERT INTO backup_operations (id, type, priority, wedding_id, components, requested_by, api_key_id, request_hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
    [
      op.id,
      op.type,
      op.priority,
      op.weddingId ?? null,
      JSON.stringify(op.components ?? []),
      op.requestedBy ?? null,
      op.apiKeyId ?? null,
      op.requestHash ?? null,
    ],
  );
}

export async function getOperation(db: Queryable, id: string): Promise<Operation | undefined> {
  const { rows } = await db.query<Row>('SELECT * FROM backup_operations WHERE id = $1', [id]);
  return rows[0] && toOperation(rows[0]);
}

/** Marks the operation running; a re-delivered job (after a crash) counts another attempt. */
export async function startOperation(db: Db, id: string, jobId?: string): Promise<Operation | undefined> {
  const { rows } = await db.query<Row>(
    `UPDATE backup_operations
        SET state = 'running', attempts = attempts + 1, started_at = COALESCE(started_at, now()), error = NULL,
            job_id = COALESCE($2, job_id), heartbeat_at = now()
      WHERE id = $1 AND state <> 'completed' RETURNING *`,
    [id, jobId ?? null],
  );
  return rows[0] && toOperation(rows[0]);
}

/** A running operation's sign of life, which the reconciler reads instead of Redis. */
export async function touchOperation(db: Db, id: string): Promise<void> {
  await db.query(`UPDATE backup_operations SET heartbeat_at = now() WHERE id = $1 AND state = 'running'`, [
    id,
  ]);
}

export async function reportProgress(db: Db, id: string, progress: number, bytes: number): Promise<void> {
  await db.query('UPDATE backup_operations SET progress = $2, bytes = $3 WHERE id = $1', [
    id,
    progress,
    bytes,
  ]);
}

export async function completeOperation(
  db: Db,
  id: string,
  result: { recoveryPointId: string; bytes: number; followUps: Operation['followUps'] },
): Promise<void> {
  await db.query(
    `UPDATE backup_operations
        SET state = 'completed', progress = 1, recovery_point_id = $2, bytes = $3, follow_ups = $4, finished_at = now()
      WHERE id = $1`,
    [id, result.recoveryPointId, result.bytes, JSON.stringify(result.followUps)],
  );
}

/** Records a failure; final=false keeps the state 'queued' because BullMQ will retry. */
export async function failOperation(
  db: Db,
  id: string,
  error: { code: string; message: string },
  final: boolean,
): Promise<void> {
  await db.query(
    `UPDATE backup_operations SET state = $2, error = $3, finished_at = CASE WHEN $4 THEN now() END
      WHERE id = $1 AND state <> 'completed'`,
    [id, final ? 'failed' : 'queued', JSON.stringify(error), final],
  );
}
