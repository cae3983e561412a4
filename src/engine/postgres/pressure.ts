/**
 * How busy the source database is, for the source guard (heavy scheduled jobs wait while it is
 * under pressure): its non-idle client sessions, its replication lag, and custom checks from the
 * config. Read on a short connection of its own, read-only, with a statement timeout.
 */
import pg from 'pg';

export interface PressureCheck {
  name: string;
  /** One statement whose first row's first column is a number. */
  sql: string;
  max: number;
}

export interface PressureLimits {
  maxActiveConnections?: number | undefined;
  maxReplicationLagSeconds?: number | undefined;
  checks: PressureCheck[];
}

export interface PressureReading {
  activeConnections: number;
  /** Seconds; null when the source has no standby and is none. */
  replicationLagSeconds: number | null;
  checks: { name: string; value: number | null }[];
}

export interface PressureVerdict {
  under: boolean;
  /** One line per limit passed, e.g. `active connections 12 > 10`. */
  reasons: string[];
}

const ACTIVE = `SELECT count(*)::int AS n FROM pg_stat_activity
  WHERE datname = current_database() AND backend_type = 'client backend'
    AND state IS DISTINCT FROM 'idle' AND pid <> pg_backend_pid()`;

// A primary's worst standby, or a standby's own delay behind its primary.
const LAG = `SELECT GREATEST(
    (SELECT max(EXTRACT(epoch FROM replay_lag)) FROM pg_stat_replication),
    CASE WHEN pg_is_in_recovery() THEN EXTRACT(epoch FROM now() - pg_last_xact_replay_timestamp()) END
  )::float8 AS lag`;

export async function readPressure(url: string, limits: PressureLimits): Promise<PressureReading> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(`BEGIN READ ONLY`);
    await client.query(`SET LOCAL statement_timeout = '5s'`);
    const active = (await client.query<{ n: number }>(ACTIVE)).rows[0]!.n;
    const lag = limits.maxReplicationLagSeconds
      ? (await client.query<{ lag: number | null }>(LAG)).rows[0]!.lag
      : null;
    const checks = [];
    for (const c of limits.checks) {
      const row = (await client.query({ text: c.sql, rowMode: 'array' })).rows[0] as unknown[] | undefined;
      const value = row?.[0] == null ? null : Number(row[0]);
      checks.push({ name: c.name, value: Number.isFinite(value) ? value : null });
    }
    await client.query('COMMIT');
    return { activeConnections: active, replicationLagSeconds: lag, checks };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Pure: which limits a reading passes. A check that returned no number says nothing. */
export function judgePressure(reading: PressureReading, limits: PressureLimits): PressureVerdict {
  const reasons: string[] = [];
  const { maxActiveConnections: maxConn, maxReplicationLagSeconds: maxLag } = limits;
  if (maxConn !== undefined && reading.activeConnections > maxConn)
    reasons.push(`active connections ${reading.activeConnections} > ${maxConn}`);
  const lag = reading.replicationLagSeconds;
  if (maxLag !== undefined && lag !== null && lag > maxLag)
    reasons.push(`replication lag ${lag.toFixed(1)} s > ${maxLag} s`);
  for (const c of limits.checks) {
    const value = reading.checks.find((r) => r.name === c.name)?.value;
    if (value != null && value > c.max) reasons.push(`${c.name} ${value} > ${c.max}`);
  }
  return { under: reasons.length > 0, reasons };
}
