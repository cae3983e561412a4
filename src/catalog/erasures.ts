/** Erasures requested through the service or the CLI, their state per target and their certificate. */
import type { Db, Queryable } from './db.js';

/** One target's outcome, as the erasure job reports it (engine/erase.ts's TargetErasure). */
export interface TargetErasure {
  target: string;
  keysDestroyed: string[];
  objectsRemoved: number;
  verifiedAt: string;
  verification: string;
}

/** The signed certificate, kept as the engine made it (engine/erase.ts). */
export interface ErasureCertificate {
  erasureId: string;
  scope: string;
  text: string;
}

export type ErasureStatus = 'queued' | 'running' | 'completed' | 'failed';

export interface Erasure {
  erasureId: string;
  scope: string;
  reason: string;
  requestedBy: string;
  status: ErasureStatus;
  targets: TargetErasure[];
  certificate: ErasureCertificate | null;
  error: string | null;
  createdAt: Date;
  completedAt: Date | null;
}

interface Row {
  id: string;
  scope: string;
  reason: string;
  requested_by: string;
  status: ErasureStatus;
  targets: TargetErasure[];
  certificate: ErasureCertificate | null;
  error: string | null;
  created_at: Date;
  completed_at: Date | null;
}

const fromRow = (r: Row): Erasure => ({
  erasureId: r.id,
  scope: r.scope,
  reason: r.reason,
  requestedBy: r.requested_by,
  status: r.status,
  targets: r.targets,
  certificate: r.certificate,
  error: r.error,
  createdAt: r.created_at,
  completedAt: r.completed_at,
});

/**
 * Records a new erasure, or finds the one already queued, running or done for the scope (the same
 * request twice is one erasure): `created` says which.
 */
export async function createErasure(
  db: Queryable,
  e: { id: string; scope: string; reason: string; requestedBy: string },
): Promise<{ erasure: Erasure; created: boolean }> {
  const inserted = await db.query<Row>(
    `INSERT INTO erasures (id, scope, reason, requested_by) VALUES ($1, $2, $3, $4)
     ON CONFLICT (scope) WHERE status <> 'failed' DO NOTHING RETURNING *`,
    [e.id, e.scope, e.reason, e.requestedBy],
  );
  if (inserted.rows[0]) return { erasure: fromRow(inserted.rows[0]), created: true };
  const existing = await db.query<Row>(`SELECT * FROM erasures WHERE scope = $1 AND status <> 'failed'`, [
    e.scope,
  ]);
  return { erasure: fromRow(existing.rows[0]!), created: false };
}

export async function getErasure(db: Queryable, id: string): Promise<Erasure | undefined> {
  const { rows } = await db.query<Row>('SELECT * FROM erasures WHERE id = $1', [id]);
  return rows[0] && fromRow(rows[0]);
}

/** The erasures done or under way, for the scopes a caller must leave alone. */
export async function listErasures(db: Queryable): Promise<Erasure[]> {
  const { rows } = await db.query<Row>(`SELECT * FROM erasures WHERE status <> 'failed' ORDER BY created_at`);
  return rows.map(fromRow);
}

export async function updateErasure(
  db: Db,
  id: string,
  u: { status: ErasureStatus; targets?: TargetErasure[]; certificate?: ErasureCertificate; error?: string },
): Promise<void> {
  await db.query(
    `UPDATE erasures SET status = $2, targets = COALESCE($3, targets), certificate = COALESCE($4, certificate),
        error = $5, updated_at = now(), completed_at = CASE WHEN $2 = 'completed' THEN now() ELSE completed_at END
      WHERE id = $1`,
    [
      id,
      u.status,
      u.targets ? JSON.stringify(u.targets) : null,
      u.certificate ? JSON.stringify(u.certificate) : null,
      u.error ?? null,
    ],
  );
}
