/** Every wedding's ceremony date, time zone and region from the source, for the cadence planner (one query). */
import pg from 'pg';
import type { PostgresSourceConfig } from '../../config/index.js';
import { knownZone, poolFor, weddingTable } from './ceremony.js';

export interface SourceWedding {
  id: string;
  /** YYYY-MM-DD, or undefined when the row has no date. */
  ceremonyDate: string | undefined;
  timeZone: string;
  region: string | undefined;
}

/**
 * The weddings the source knows (only `ids` when given). Undefined when the ceremony table or its
 * one-column key is missing: the source cannot say which weddings exist.
 */
export async function readWeddings(
  source: PostgresSourceConfig,
  ids?: readonly string[],
): Promise<SourceWedding[] | undefined> {
  const pool = poolFor(source.url);
  const found = await weddingTable(pool, source);
  if (!found) return undefined;
  const col = (c: { column: string } | undefined) => (c ? `${pg.escapeIdentifier(c.column)}::text` : 'NULL');
  const { rows } = await pool.query<{
    id: string;
    d: string | null;
    tz: string | null;
    region: string | null;
  }>(
    `SELECT ${pg.escapeIdentifier(found.key)}::text AS id, ${pg.escapeIdentifier(source.ceremonyDate.column)}::date::text AS d,
            ${col(source.weddingTimeZone)} AS tz, ${col(source.weddingRegion)} AS region
       FROM ${found.relation}
      ${ids ? `WHERE ${pg.escapeIdentifier(found.key)}::text = ANY($1)` : ''}`,
    ids ? [ids] : [],
  );
  const zones = new Map<string, string>();
  return rows.map((r) => {
    // a zone is checked once per distinct name: 100,000 weddings share a few dozen zones
    let tz = zones.get(r.tz ?? '');
    if (tz === undefined) zones.set(r.tz ?? '', (tz = knownZone(r.tz)));
    return { id: r.id, ceremonyDate: r.d ?? undefined, timeZone: tz, region: r.region ?? undefined };
  });
}
