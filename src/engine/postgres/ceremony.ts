/** Looks up a wedding's ceremony date in the source database, as configured ([schema.]table.column, keyed by its primary key). */
import pg from 'pg';
import type { PostgresSourceConfig } from '../../config/index.js';

const pools = new Map<string, pg.Pool>();

/** One small pool per source URL, shared by the ceremony lookups and the wedding listing (weddings.ts). */
export function poolFor(url: string): pg.Pool {
  let pool = pools.get(url);
  if (!pool) {
    pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 3_000 });
    pool.on('error', () => undefined);
    pools.set(url, pool);
  }
  return pool;
}

export async function closeCeremonyPools(): Promise<void> {
  await Promise.all([...pools.values()].map((p) => p.end()));
  pools.clear();
}

export interface WeddingLookup {
  found: boolean;
  ceremonyDate: string | undefined;
  /** IANA zone the ceremony date is a calendar date in: the configured column, else UTC. */
  timeZone: string;
}

/**
 * Looks the wedding up in the configured table; undefined when that table (or its single-column
 * key) is not there, so the source cannot say whether the wedding exists.
 */
export async function lookupWedding(
  source: PostgresSourceConfig,
  weddingId: string,
): Promise<WeddingLookup | undefined> {
  const column = source.ceremonyDate.column;
  const pool = poolFor(source.url);
  const found = await weddingTable(pool, source);
  if (!found) return undefined;
  const { relation, key } = found;
  const zoneColumn = source.weddingTimeZone?.column;
  const zone = zoneColumn ? `${pg.escapeIdentifier(zoneColumn)}::text` : 'NULL';
  const { rows } = await pool.query<{ d: string | null; tz: string | null }>(
    `SELECT ${pg.escapeIdentifier(column)}::date::text AS d, ${zone} AS tz FROM ${relation}
      WHERE ${pg.escapeIdentifier(key)}::text = $1`,
    [weddingId],
  );
  return { found: rows.length > 0, ceremonyDate: rows[0]?.d ?? undefined, timeZone: knownZone(rows[0]?.tz) };
}

/** The ceremony date's table (quoted) and its one-column primary key; undefined when either is missing. */
export async function weddingTable(
  pool: pg.Pool,
  source: PostgresSourceConfig,
): Promise<{ relation: string; key: string } | undefined> {
  const { schema, table } = source.ceremonyDate;
  const relation = (schema ? `${pg.escapeIdentifier(schema)}.` : '') + pg.escapeIdentifier(table);
  const pk = await pool.query<{ attname: string }>(
    `SELECT a.attname FROM pg_index i
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
      WHERE i.indrelid = to_regclass($1) AND i.indisprimary`,
    [relation],
  );
  const key = pk.rows[0]?.attname;
  return key && pk.rows.length === 1 ? { relation, key } : undefined;
}

/** A zone the runtime knows, else UTC: a mistyped zone in the source shifts a priority by a day at most. */
export function knownZone(tz: string | null | undefined): string {
  if (!tz) return 'UTC';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return tz;
  } catch {
    return 'UTC';
  }
}
