/** Named restore points emitted on the source (POST /api/restore-points): a name resolves to its LSN. */
import type { Db } from './db.js';

export interface RestorePointRow {
  name: string;
  lsn: string;
  time: string;
  createdBy: string | null;
}

export async function recordRestorePoint(db: Db, p: RestorePointRow): Promise<void> {
  await db.query(`INSERT INTO restore_points (name, lsn, time, created_by) VALUES ($1, $2, $3, $4)`, [
    p.name,
    p.lsn,
    p.time,
    p.createdBy,
  ]);
}

export async function getRestorePoint(db: Db, name: string): Promise<RestorePointRow | undefined> {
  const { rows } = await db.query(`SELECT name, lsn, time, created_by FROM restore_points WHERE name = $1`, [
    name,
  ]);
  return rows[0] && toRow(rows[0]);
}

export async function listRestorePoints(db: Db): Promise<RestorePointRow[]> {
  const { rows } = await db.query(
    `SELECT name, lsn, time, created_by FROM restore_points ORDER BY time DESC`,
  );
  return rows.map(toRow);
}

const toRow = (r: { name: string; lsn: string; time: Date; created_by: string | null }): RestorePointRow => ({
  name: r.name,
  lsn: r.lsn,
  time: r.time.toISOString(),
  createdBy: r.created_by,
});
