/** Temp PostgreSQL databases for tests, and ways to compare two databases' contents. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { dbUrl, dropDatabase, PG_ADMIN_URL } from './service.js';

export { dbUrl, dropDatabase, PG_ADMIN_URL };

export interface TempDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** A name and URL with a random suffix; created now unless `create: false` (e.g. to let a restore create it). */
export async function createTempDatabase(
  label: string,
  opts: { create?: boolean } = {},
): Promise<TempDatabase> {
  const name = `wv_test_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  if (opts.create !== false) {
    const c = new pg.Client({ connectionString: PG_ADMIN_URL });
    await c.connect();
    try {
      await c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`);
    } finally {
      await c.end();
    }
  }
  return { name, url: dbUrl(name), drop: () => dropDatabase(name) };
}

export async function query<T extends pg.QueryResultRow>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** Per table `rows:md5` over every row's text form, sorted, so physical order does not matter. */
export async function tableDigests(url: string): Promise<Record<string, string>> {
  const tables = await query<{ t: string }>(
    url,
    `SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables
      WHERE schemaname NOT IN ('pg_catalog','information_schema') ORDER BY 1`,
  );
  const out: Record<string, string> = {};
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    // the same text for the same values whatever the database's own defaults
    await c.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'`);
    for (const { t } of tables) {
      const { rows } = await c.query<{ d: string; n: string }>(
        `SELECT md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) AS d, count(*)::text AS n FROM ${t} x`,
      );
      out[t] = `${rows[0]!.n}:${rows[0]!.d}`;
    }
  } finally {
    await c.end();
  }
  return out;
}

/** `pg_dump --data-only` without comments and session lines, rows sorted (restores may reorder them). */
export function dataDump(url: string): string {
  return execFileSync('pg_dump', ['--data-only', '--no-owner', '-d', url], { maxBuffer: 1 << 30 })
    .toString()
    .split('\n')
    .filter((l) => !l.startsWith('--') && !l.startsWith('\\restrict') && !l.startsWith('\\unrestrict'))
    .sort()
    .join('\n');
}

/** Constraints (name:type) and indexes of the non-system schemas. */
export async function schemaObjects(url: string): Promise<string[]> {
  const rows = await query<{ o: string }>(
    url,
    `SELECT n.nspname || '.' || conname || ':' || contype::text AS o
       FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
     UNION ALL
     SELECT schemaname || '.' || indexname FROM pg_indexes
      WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND schemaname NOT LIKE 'pg\\_%'
     ORDER BY 1`,
  );
  return rows.map((r) => r.o);
}
