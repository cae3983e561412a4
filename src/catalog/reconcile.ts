/** The reconciler's queries: rows whose job may be gone, and the guarded updates that resume or fail them. */
import type { Db } from './db.js';
import type { BackupType } from './operations.js';

/** An operation nobody has touched for `staleMs`: queued or running, no heartbeat since. */
export interface QuietOperation {
  id: string;
  type: BackupType;
  state: 'queued' | 'running';
  priority: number;
  weddingId: string | null;
  components: ('database' | 'files')[];
  jobId: string | null;
  resumes: number;
}

/** No sign of life for $1 ms: the last heartbeat, or the start, or the creation of the row. */
const QUIET = `COALESCE(heartbeat_at, started_at, created_at) < now() - make_interval(secs => $1::double precision / 1000)`;

export async function quietOperations(db: Db, staleMs: number): Promise<QuietOperation[]> {
  const { rows } = await db.query<QuietOperation>(
    `SELECT id, type, state, priority, wedding_id AS "weddingId", components, job_id AS "jobId", resumes
       FROM backup_operations
      WHERE state IN ('queued', 'running') AND ${QUIET} ORDER BY created_at LIMIT 500`,
    [staleMs],
  );
  return rows;
}

/** Counts a re-enqueue; false when the row moved on meanwhile (a worker took it up, or it finished). */
export async function markResumed(db: Db, id: string, jobId: string, staleMs: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE backup_operations SET state = 'queued', resumes = resumes + 1, job_id = $2, heartbeat_at = now()
      WHERE id = $3 AND state IN ('queued', 'running') AND ${QUIET}`,
    [staleMs, jobId, id],
  );
  return rowCount === 1;
}

export async function failQuietOperation(
  db: Db,
  id: string,
  error: { code: string; message: string },
  staleMs: number,
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE backup_operations SET state = 'failed', error = $2, finished_at = now()
      WHERE id = $3 AND state IN ('queued', 'running') AND ${QUIET}`,
    [staleMs, JSON.stringify(error), id],
  );
  return rowCount === 1;
}

export interface QuietTest {
  id: string;
  status: 'queued' | 'running';
  jobId: string | null;
}

export async function quietTests(db: Db, staleMs: number): Promise<QuietTest[]> {
  const { rows } = await db.query<QuietTest>(
    `SELECT id, status, job_id AS "jobId" FROM backup_tests
      WHERE status IN ('queued', 'running') AND ${QUIET} ORDER BY created_at LIMIT 500`,
    [staleMs],
  );
  return rows;
}

export async function failQuietTest(db: Db, id: string, detail: string, staleMs: number): Promise<boolean> {
  const problems = [{ object: 'job', kind: 'job_lost', detail }];
  const { rowCount } = await db.query(
    `UPDATE backup_tests SET status = 'failed', problems = $2, finished_at = now()
      WHERE id = $3 AND status IN ('queued', 'running') AND ${QUIET}`,
    [staleMs, JSON.stringify(problems), id],
  );
  return rowCount === 1;
}

/** Drills that are over (or were failed above) but whose scratch database and directory are still recorded. */
export async function leftoverScratch(db: Db): Promise<{ id: string; database: string; dir: string }[]> {
  const { rows } = await db.query(
    `SELECT id, scratch->>'database' AS database, scratch->>'dir' AS dir FROM backup_tests
      WHERE scratch IS NOT NULL AND status NOT IN ('queued', 'running')`,
  );
  return rows as { id: string; database: string; dir: string }[];
}

/** Replicas still pending after `staleMs`: their replicate job may be gone. */
export interface QuietReplica {
  recoveryPointId: string;
  target: string;
  operationId: string | null;
  priority: number | null;
}

export async function quietReplicas(db: Db, staleMs: number): Promise<QuietReplica[]> {
  const { rows } = await db.query<QuietReplica>(
    `SELECT r.recovery_point_id AS "recoveryPointId", r.target, p.operation_id AS "operationId", o.priority
       FROM replicas r JOIN recovery_points p ON p.id = r.recovery_point_id AND p.deleted_at IS NULL
       LEFT JOIN backup_operations o ON o.id = p.operation_id
      WHERE r.state = 'pending' AND r.updated_at < now() - make_interval(secs => $1::double precision / 1000)
      ORDER BY r.updated_at LIMIT 500`,
    [staleMs],
  );
  return rows;
}

/** Pending replicas re-enqueued are touched, so the next pass waits another period before looking again. */
export async function touchReplica(db: Db, recoveryPointId: string, target: string): Promise<void> {
  await db.query(
    `UPDATE replicas SET updated_at = now() WHERE recovery_point_id = $1 AND target = $2 AND state = 'pending'`,
    [recoveryPointId, target],
  );
}
