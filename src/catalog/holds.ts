/** Legal holds: a recovery point, or every point holding a wedding, kept until released or lapsed. */
import { randomUUID } from 'node:crypto';
import type { Db } from './db.js';

export interface LegalHold {
  id: string;
  weddingId: string | null;
  recoveryPointId: string | null;
  reason: string;
  until: Date | null;
  /** The API key that placed it. */
  createdBy: string | null;
  createdAt: Date;
  releasedAt: Date | null;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
const toHold = (r: any): LegalHold => ({
  id: r.id,
  weddingId: r.wedding_id,
  recoveryPointId: r.recovery_point_id,
  reason: r.reason,
  until: r.until,
  createdBy: r.created_by,
  createdAt: r.created_at,
  releasedAt: r.released_at,
});
/* eslint-enable @typescript-eslint/no-explicit-any */

export interface NewHold {
  weddingId?: string | undefined;
  recoveryPointId?: string | undefined;
  reason: string;
  until?: Date | undefined;
  createdBy?: string | undefined;
}

export async function createHold(db: Db, h: NewHold): Promise<LegalHold> {
  const { rows } = await db.query(
    `INSERT INTO legal_holds (id, wedding_id, recovery_point_id, reason, until, created_by)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
    [
      randomUUID(),
      h.weddingId ?? null,
      h.recoveryPointId ?? null,
      h.reason,
      h.until ?? null,
      h.createdBy ?? null,
    ],
  );
  return toHold(rows[0]);
}

/** Releases a hold; undefined when no hold has this id (releasing a released one changes nothing). */
export async function releaseHold(db: Db, id: string, releasedBy?: string): Promise<LegalHold | undefined> {
  const { rows } = await db.query(
    `UPDATE legal_holds SET released_at = COALESCE(released_at, now()), released_by = COALESCE(released_by, $2)
      WHERE id = $1 RETURNING *`,
    [id, releasedBy ?? null],
  );
  return rows[0] && toHold(rows[0]);
}

/** Holds not released and not lapsed at `at` (default now), oldest first. */
export async function listActiveHolds(db: Db, at?: Date): Promise<LegalHold[]> {
  const { rows } = await db.query(
    `SELECT * FROM legal_holds
      WHERE released_at IS NULL AND (until IS NULL OR until > COALESCE($1::timestamptz, now()))
      ORDER BY created_at, id`,
    [at ?? null],
  );
  return rows.map(toHold);
}
