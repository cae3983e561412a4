/**
 * What a one-wedding restore must hold, worked out from the source's schema and rows alone (never
 * from the snapshot's own table classification), and the check that a target holds exactly that.
 */
import pg from 'pg';
import { expect } from 'vitest';

/** The source's settings the rule needs: its tenant column name and the ceremony-date table. */
export interface SchemaOptions {
  tenantKey?: string;
  ceremonyTable?: string;
}

/**
 * A table as the catalog describes it: the column naming its wedding, or for a table reaching its
 * wedding through foreign keys, the SQL giving row x's wedding (none of either: shared by all).
 */
export interface SchemaTable {
  name: string;
  tenantColumn: string | undefined;
  /** SQL over row alias `x`: the row's wedding (NULL: a platform row of a mixed table). */
  tenant?: string | undefined;
}

/**
 * Every user table (a partitioned table once, by its root), with its wedding by the rule the
 * README states: the ceremony-date table's primary key, else a column named the tenant key, else
 * the wedding of the row a one-column foreign key names (NOT NULL keys first, then by name), followed
 * as far as it goes.
 */
export async function schemaTables(url: string, opts: SchemaOptions = {}): Promise<SchemaTable[]> {
  const { tenantKey = 'wedding_id', ceremonyTable = 'weddings' } = opts;
  const rows = await withClient(url, (c) =>
    c.query<{ name: string; tenant: string | null; fks: { col: string; to: string; toCol: string }[] }>(
      `SELECT format('%I.%I', n.nspname, c.relname) AS name,
              CASE WHEN c.relname = $2 AND n.nspname = 'public' THEN
                     (SELECT a.attname FROM pg_index i
                        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                       WHERE i.indrelid = c.oid AND i.indisprimary)
                   ELSE (SELECT a.attname FROM pg_attribute a
                          WHERE a.attrelid = c.oid AND a.attname = $1 AND NOT a.attisdropped) END AS tenant,
              coalesce((SELECT json_agg(json_build_object('col', a.attname, 'to', (SELECT format('%I.%I', rn.nspname, rc.relname) FROM pg_class rc
                                                   JOIN pg_namespace rn ON rn.oid = rc.relnamespace
                                                  WHERE rc.oid = k.confrelid),
                                          'toCol', b.attname) ORDER BY NOT a.attnotnull, k.conname)
                 FROM pg_constraint k
                 JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
                 JOIN pg_attribute b ON b.attrelid = k.confrelid AND b.attnum = k.confkey[1]
                WHERE k.conrelid = c.oid AND k.contype = 'f' AND cardinality(k.conkey) = 1
                  AND k.conparentid = 0), '[]') AS fks
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
        ORDER BY 1`,
      [tenantKey, ceremonyTable],
    ),
  );
  // a table's wedding as SQL over a row alias, found through the tables its keys name
  const byName = new Map(rows.rows.map((r) => [r.name, r]));
  const found = new Map<string, (alias: string) => string>();
  for (const r of rows.rows) if (r.tenant) found.set(r.name, (a) => `${a}.${pg.escapeIdentifier(r.tenant!)}`);
  for (let changed = true, depth = 0; changed; depth++) {
    changed = false;
    for (const r of rows.rows) {
      if (found.has(r.name)) continue;
      const fk = r.fks.find((k) => found.has(k.to) && byName.has(k.to));
      if (!fk) continue;
      const inner = found.get(fk.to)!;
      const p = `p${depth}`;
      const col = pg.escapeIdentifier(fk.col);
      const toCol = pg.escapeIdentifier(fk.toCol);
      found.set(r.name, (a) => `(SELECT ${inner(p)} FROM ${fk.to} ${p} WHERE ${p}.${toCol} = ${a}.${col})`);
      changed = true;
    }
  }
  return rows.rows.map((r) => ({
    name: r.name,
    tenantColumn: r.tenant ?? undefined,
    tenant: found.get(r.name)?.('x'),
  }));
}

/**
 * `count:md5` over the rows' text forms, sorted; only the wedding's rows (and the platform's rows
 * of a mixed table, whose wedding is NULL) when one is named.
 */
export async function rowsDigest(url: string, table: SchemaTable, wedding?: string): Promise<string> {
  const tenant = table.tenant ?? (table.tenantColumn && `x.${pg.escapeIdentifier(table.tenantColumn)}`);
  const where = wedding === undefined || !tenant ? '' : `WHERE (${tenant})::text = $1 OR (${tenant}) IS NULL`;
  const { rows } = await withClient(url, (c) =>
    c.query<{ d: string }>(
      `SELECT count(*) || ':' || md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) AS d
         FROM ${table.name} x ${where}`,
      where ? [wedding] : [],
    ),
  );
  return rows[0]!.d;
}

/**
 * What a restore of one wedding must hold, per table: the digest of the source's rows of that
 * wedding (wedding tables) or of every row (shared tables). Taken when the backup is, if the source
 * changes afterwards.
 */
export async function weddingDigests(
  source: string,
  wedding: string,
  opts: SchemaOptions = {},
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const tables = await schemaTables(source, opts);
  expect(tables.some((t) => t.tenantColumn)).toBe(true);
  for (const t of tables) out[t.name] = await rowsDigest(source, t, wedding);
  return out;
}

/**
 * The target holds, table by table, exactly the expected rows (see weddingDigests; a source URL
 * computes them now), and no row of any other wedding.
 */
export async function expectOneWedding(
  target: string,
  wedding: string,
  expected: Record<string, string> | string,
  opts: SchemaOptions = {},
): Promise<void> {
  const want = typeof expected === 'string' ? await weddingDigests(expected, wedding, opts) : expected;
  const tables = await schemaTables(target, opts);
  expect(tables.map((t) => t.name)).toEqual(Object.keys(want));
  for (const t of tables) {
    expect(await rowsDigest(target, t), t.name).toBe(want[t.name]);
    if (!t.tenant) continue;
    const { rows } = await withClient(target, (c) =>
      c.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${t.name} x WHERE (${t.tenant})::text <> $1`, [
        wedding,
      ]),
    );
    expect(rows[0]!.n, `${t.name}: rows of other weddings`).toBe(0);
  }
}

/**
 * Makes seeded weddings differ in size (the seed gives each the same number of guests), so a
 * restore of the wrong wedding cannot match by counts: drops a share of guests that depends on the
 * wedding (their RSVPs go with them).
 */
export async function varyWeddings(url: string): Promise<void> {
  await withClient(url, (c) => c.query(`DELETE FROM guests WHERE guest_id % (wedding_id % 5 + 3) = 0`));
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'`);
    return await fn(c);
  } finally {
    await c.end();
  }
}
