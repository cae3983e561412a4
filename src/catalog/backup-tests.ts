/** Verification runs of recovery points (quick, full, drill) and what they found. */
import type { Db, Queryable } from './db.js';

export interface BackupTest {
  testId: string;
  recoveryPointId: string;
  mode: string;
  status: 'queued' | 'running' | 'passed' | 'failed';
  targets: string[];
  problems: { target?: string; object: string; kind: string }[];
  repairs: unknown[];
  rtoMs: number | null;
  createdAt: Date;
  finishedAt: Date | null;
}

export async function createTest(
  db: Queryable,
  t: { id: string; recoveryPointId: string; mode: string; targets?: string[] },
): Promise<void> {
  await db.query(
    `INSERT INTO backup_tests (id, recovery_point_id, mode, targets) VALUES ($1,$2,$3,$4) ON CONFLICT (id) DO NOTHING`,
    [t.id, t.recoveryPointId, t.mode, t.targets ?? []],
  );
}

export async function startTest(
  db: Db,
  t: { id: string; recoveryPointId: string; mode: string; targets: string[]; jobId?: string },
): Promise<void> {
  await db.query(
    `INSERT INTO backup_tests (id, recovery_point_id, mode, targets, status, started_at, job_id, heartbeat_at)
     VALUES ($1,$2,$3,$4,'running',now(),$5,now())
     ON CONFLICT (id) DO UPDATE SET status = 'running', targets = EXCLUDED.targets, started_at = now(),
        job_id = COALESCE(EXCLUDED.job_id, backup_tests.job_id), heartbeat_at = now()`,
    [t.id, t.recoveryPointId, t.mode, t.targets, t.jobId ?? null],
  );
}

/** A running test's sign of life, which the reconciler reads instead of Redis. */
export async function touchTest(db: Db, id: string): Promise<void> {
  await db.query(`UPDATE backup_tests SET heartbeat_at = now() WHERE id = $1 AND status = 'running'`, [id]);
}

export interface Scratch {
  database: string;
  dir: string;
}

/** Records (or, with null, forgets) a drill's scratch database and directory, so a dead drill's can be dropped. */
export async function setScratch(db: Db, id: string, scratch: Scratch | null): Promise<void> {
  await db.query('UPDATE backup_tests SET scratch = $2 WHERE id = $1', [
    id,
    scratch && JSON.stringify(scratch),
  ]);
}

export async function finishTest(
  db: Db,
  id: string,
  status: 'passed' | 'failed',
  problems: unknown[],
  repairs: unknown[] = [],
  rtoMs?: number,
): Promise<void> {
  await db.query(
    `UPDATE backup_tests SET status = $2, problems = $3, repairs = $4, rto_ms = $5, finished_at = now() WHERE id = $1`,
    [id, status, JSON.stringify(problems), JSON.stringify(repairs), rtoMs ?? null],
  );
}

export async function getTest(db: Db, id: string): Promise<BackupTest | undefined> {
  const { rows } = await db.query('SELECT * FROM backup_tests WHERE id = $1', [id]);
  const r = rows[0];
  if (!r) return undefined;
  return {
    testId: r.id,
    recoveryPointId: r.recovery_point_id,
    mode: r.mode,
    status: r.status,
    targets: r.targets,
    problems: r.problems,
    repairs: r.repairs,
    rtoMs: r.rto_ms,
    createdAt: r.created_at,
    finishedAt: r.finished_at,
  };
}
