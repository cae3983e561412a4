/** Restores requested through the service: where from, where to, how long, and how it ended. */
import type { Db } from './db.js';

export async function startRecovery(db: Db, id: string, recoveryPointId: string): Promise<void> {
  await db.query(
    `INSERT INTO recoveries (id, state, recovery_point_id) VALUES ($1, 'running', $2)
     ON CONFLICT (id) DO UPDATE SET state = 'running', recovery_point_id = $2`,
    [id, recoveryPointId],
  );
}

export async function finishRecovery(
  db: Db,
  id: string,
  state: 'completed' | 'failed',
  details: { validation?: unknown; error?: { code: string; message: string } },
): Promise<void> {
  await db.query(
    `UPDATE recoveries SET state = $2, progress = CASE WHEN $2 = 'completed' THEN 1 ELSE progress END,
        validation = $3, error = $4, finished_at = now() WHERE id = $1`,
    [id, state, JSON.stringify(details.validation ?? null), JSON.stringify(details.error ?? null)],
  );
}
