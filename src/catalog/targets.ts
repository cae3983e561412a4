/** Target health as last observed: successes, failures, latency and space. */
import type { Db } from './db.js';

export interface TargetHealth {
  name: string;
  kind: string;
  labels: Record<string, unknown>;
  healthy: boolean;
  lastOkAt: Date | null;
  lastErrorAt: Date | null;
  lastError: string | null;
  latencyMs: number | null;
  errorCount: number;
  usedBytes: number | null;
  freeBytes: number | null;
}

export async function registerTarget(db: Db, name: string, kind: string, labels: object): Promise<void> {
  await db.query(
    `INSERT INTO targets (name, kind, labels) VALUES ($1, $2, $3)
     ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, labels = EXCLUDED.labels, updated_at = now()`,
    [name, kind, JSON.stringify(labels)],
  );
}

export async function recordTargetSuccess(db: Db, name: string, latencyMs: number): Promise<void> {
  await db.query(
    `UPDATE targets SET healthy = true, last_ok_at = now(), latency_ms = $2, updated_at = now() WHERE name = $1`,
    [name, Math.round(latencyMs)],
  );
}

export async function recordTargetFailure(db: Db, name: string, error: string): Promise<void> {
  await db.query(
    `UPDATE targets SET healthy = false, last_error_at = now(), last_error = $2, error_count = error_count + 1,
        updated_at = now() WHERE name = $1`,
    [name, error.slice(0, 2000)],
  );
}

export async function listTargetHealth(db: Db): Promise<TargetHealth[]> {
  const { rows } = await db.query('SELECT * FROM targets ORDER BY name');
  /* eslint-disable-next-line @typescript-eslint/no-explicit-any */
  return rows.map((r: any) => ({
    name: r.name,
    kind: r.kind,
    labels: r.labels,
    healthy: r.healthy,
    lastOkAt: r.last_ok_at,
    lastErrorAt: r.last_error_at,
    lastError: r.last_error,
    latencyMs: r.latency_ms,
    errorCount: r.error_count,
    usedBytes: r.used_bytes === null ? null : Number(r.used_bytes),
    freeBytes: r.free_bytes === null ? null : Number(r.free_bytes),
  }));
}
