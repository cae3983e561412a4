/** Reads the source database's shape: tables, columns, keys, tenant columns and sequences. */
import pg from 'pg';
import type { CeremonyColumn, TableName } from '../../config/index.js';
import { ConfigError } from '../../errors.js';
import type { TenancyTable } from './tenancy.js';
import { rowsQuery, type TenantVia } from './tenant-rows.js';

export interface PgColumn {
  name: string;
  type: string;
}

export interface PgTableInfo {
  schema: string;
  name: string;
  columns: PgColumn[];
  primaryKey: string[];
  /** The column naming the wedding (or supplier) each row belongs to; absent for platform tables. */
  tenantColumn?: string;
  /** For a table whose rows reach their tenant through foreign keys instead: the path. */
  tenantVia?: TenantVia;
  scopeKind: 'wedding' | 'supplier' | 'platform';
  /** A partitioned table, whose rows are its partitions': read through it (see `rowsOf`). */
  partitioned?: boolean;
  /**
   * The retention class the config puts the table in (`retention.classes`): its tenants' rows are
   * sealed under `wedding:<id>/<class>`, a key of their own that the class's expiry destroys.
   */
  dataClass?: string;
}

export interface SchemaSettings {
  tenantKey: string;
  /** The tenant table is the one holding this column. */
  ceremonyDate: CeremonyColumn;
  supplierKey?: string | undefined;
  excludeTables?: TableName[];
}

/**
 * Output settings of every session that reads rows or keys as text (backups, change peeks, drills):
 * pinned so the same value prints the same way whatever the server's defaults are, or were when an
 * older backup ran (delta keys are compared as text with rows read then), and so a change stream's
 * key values parse back as they were printed.
 */
const OUTPUT_SETTINGS: [string, string][] = [
  ['DateStyle', 'ISO, MDY'],
  ['IntervalStyle', 'postgres'],
  ['TimeZone', 'UTC'],
  ['extra_float_digits', '1'],
  ['bytea_output', 'hex'],
];

export async function pinOutputSettings(client: pg.ClientBase): Promise<void> {
  await client.query(
    `SELECT ${OUTPUT_SETTINGS.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, false)`).join(', ')}`,
    OUTPUT_SETTINGS.flat(),
  );
}

export const qualified = (t: { schema: string; name: string }): string =>
  `${pg.escapeIdentifier(t.schema)}.${pg.escapeIdentifier(t.name)}`;

/** The table the ceremony setting names (in any schema when the setting names none). */
export const isCeremonyTable = (t: { schema: string; name: string }, c: CeremonyColumn): boolean =>
  t.name === c.table && (c.schema === undefined || t.schema === c.schema);

export async function readTables(client: pg.ClientBase, s: SchemaSettings): Promise<PgTableInfo[]> {
  const { rows } = await client.query<{ oid: number; schema: string; name: string; partitioned: boolean }>(
    `SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name, c.relkind = 'p' AS partitioned
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname NOT LIKE 'pg\\_%'
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
      ORDER BY n.nspname, c.relname`,
  );
  const cols = await client.query<{ oid: number; name: string; type: string }>(
    `SELECT a.attrelid::int AS oid, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
       FROM pg_attribute a
      WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
      ORDER BY a.attrelid, a.attnum`,
    [rows.map((r) => r.oid)],
  );
  const pks = await client.query<{ oid: number; name: string }>(
    `SELECT i.indrelid::int AS oid, a.attname AS name
       FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indisprimary AND i.indrelid = ANY($1)
      ORDER BY i.indrelid, k.ord`,
    [rows.map((r) => r.oid)],
  );
  const excluded = (r: { schema: string; name: string }) =>
    (s.excludeTables ?? []).some(
      (x) => x.table === r.name && (x.schema === undefined || x.schema === r.schema),
    );
  const tables: PgTableInfo[] = [];
  for (const r of rows) {
    if (excluded(r)) continue;
    const columns = cols.rows.filter((c) => c.oid === r.oid).map(({ name, type }) => ({ name, type }));
    const primaryKey = pks.rows.filter((p) => p.oid === r.oid).map((p) => p.name);
    const has = (c: string) => columns.some((x) => x.name === c);
    let tenantColumn: string | undefined;
    let scopeKind: PgTableInfo['scopeKind'] = 'platform';
    if (isCeremonyTable(r, s.ceremonyDate) && has(s.ceremonyDate.column)) {
      if (primaryKey.length !== 1) {
        throw new ConfigError(
          `WEDVAULT_CEREMONY_DATE: table ${r.name} needs a one-column primary key (the tenant id)`,
        );
      }
      tenantColumn = primaryKey[0];
      scopeKind = 'wedding';
    } else if (has(s.tenantKey)) {
      tenantColumn = s.tenantKey;
      scopeKind = 'wedding';
    } else if (s.supplierKey && has(s.supplierKey)) {
      tenantColumn = s.supplierKey;
      scopeKind = 'supplier';
    }
    const kind = r.partitioned ? { partitioned: true } : {};
    tables.push({ schema: r.schema, name: r.name, columns, primaryKey, tenantColumn, scopeKind, ...kind });
  }
  return tables;
}

/**
 * The facts tenancy is decided from (`tenancy.ts`): every table and partition of the user's schemas
 * with its columns' NOT NULL, primary key, partition parent and foreign keys (columns in key order).
 */
export async function readTenancyFacts(client: pg.ClientBase): Promise<TenancyTable[]> {
  const { rows } = await client.query<{
    oid: number;
    schema: string;
    name: string;
    parent_schema: string | null;
    parent_name: string | null;
    columns: { name: string; notNull: boolean }[];
    pk: string[] | null;
  }>(
    `SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name,
            pn.nspname AS parent_schema, pc.relname AS parent_name,
            (SELECT json_agg(json_build_object('name', a.attname, 'notNull', a.attnotnull) ORDER BY a.attnum)
               FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
            (SELECT array_agg(a.attname::text ORDER BY k.ord)
               FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE i.indrelid = c.oid AND i.indisprimary) AS pk
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_inherits h ON c.relispartition AND h.inhrelid = c.oid
       LEFT JOIN pg_class pc ON pc.oid = h.inhparent LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname NOT LIKE 'pg\\_%'
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
      ORDER BY n.nspname, c.relname`,
  );
  const fks = await client.query<{
    oid: number;
    name: string;
    columns: string[];
    ref_schema: string;
    ref_name: string;
    ref_columns: string[];
  }>(
    // a partitioned table's key is cloned onto each partition (conparentid set): the parent's is the one
    `SELECT k.conrelid::int AS oid, k.conname AS name, rn.nspname AS ref_schema, rc.relname AS ref_name,
            (SELECT array_agg(a.attname::text ORDER BY u.ord) FROM unnest(k.conkey) WITH ORDINALITY AS u(n, ord)
               JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n) AS columns,
            (SELECT array_agg(a.attname::text ORDER BY u.ord) FROM unnest(k.confkey) WITH ORDINALITY AS u(n, ord)
               JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n) AS ref_columns
       FROM pg_constraint k JOIN pg_class rc ON rc.oid = k.confrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
      WHERE k.contype = 'f' AND k.conrelid = ANY($1) AND k.conparentid = 0
      ORDER BY k.conrelid, k.conname`,
    [rows.map((r) => r.oid)],
  );
  return rows.map((r) => ({
    schema: r.schema,
    name: r.name,
    columns: r.columns ?? [],
    primaryKey: r.pk ?? [],
    partitionOf: r.parent_name ? { schema: r.parent_schema!, name: r.parent_name } : undefined,
    foreignKeys: fks.rows
      .filter((k) => k.oid === r.oid)
      .map((k) => ({
        name: k.name,
        columns: k.columns,
        references: { schema: k.ref_schema, name: k.ref_name },
        referencedColumns: k.ref_columns,
      })),
  }));
}

export interface SequenceValue {
  name: string;
  value: string;
  isCalled: boolean;
}

export async function readSequences(client: pg.ClientBase): Promise<SequenceValue[]> {
  const { rows } = await client.query<{ schema: string; name: string }>(
    `SELECT schemaname AS schema, sequencename AS name FROM pg_sequences
      WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`,
  );
  const out: SequenceValue[] = [];
  for (const r of rows) {
    const name = qualified({ schema: r.schema, name: r.name });
    const v = await client.query<{ last_value: string; is_called: boolean }>(
      `SELECT last_value::text, is_called FROM ${name}`,
    );
    out.push({ name, value: v.rows[0]!.last_value, isCalled: v.rows[0]!.is_called });
  }
  return out;
}

export { rowsOf } from './tenant-rows.js';

/** The table's rows in dump order, its columns only (tenant-rows.ts). */
export const dumpQuery = (t: PgTableInfo): string => rowsQuery(t);

/**
 * Orders tables so that every table comes after the tables its foreign keys reference (insert
 * order; reverse it to delete). Tables in a cycle keep their given order.
 */
export async function foreignKeyOrder<T extends { schema: string; name: string }>(
  c: pg.ClientBase,
  tables: T[],
): Promise<T[]> {
  const { rows } = await c.query<{ child: string; parent: string }>(
    `SELECT format('%s.%s', cn.nspname, cc.relname) AS child, format('%s.%s', pn.nspname, pc.relname) AS parent
       FROM pg_constraint k
       JOIN pg_class cc ON cc.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = cc.relnamespace
       JOIN pg_class pc ON pc.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
      WHERE k.contype = 'f' AND k.conrelid <> k.confrelid`,
  );
  const key = (t: { schema: string; name: string }) => `${t.schema}.${t.name}`;
  const parents = new Map<string, Set<string>>();
  for (const r of rows) {
    if (!parents.has(r.child)) parents.set(r.child, new Set());
    parents.get(r.child)!.add(r.parent);
  }
  const out: T[] = [];
  const placed = new Set<string>();
  let rest = [...tables];
  while (rest.length) {
    const ready = rest.filter((t) =>
      [...(parents.get(key(t)) ?? [])].every((p) => placed.has(p) || !rest.some((x) => key(x) === p)),
    );
    const take = ready.length ? ready : [rest[0]!]; // a cycle: go on in the given order
    for (const t of take) {
      out.push(t);
      placed.add(key(t));
    }
    rest = rest.filter((t) => !placed.has(key(t)));
  }
  return out;
}

/**
 * A connection URL for a child process (pg_dump, psql) without its password, which goes into the
 * child's environment instead: command lines are visible to every user of the machine.
 */
export function childConnection(url: string): { url: string; env: NodeJS.ProcessEnv } {
  const u = new URL(url);
  const password = decodeURIComponent(u.password);
  u.password = '';
  return { url: u.toString(), env: password ? { ...process.env, PGPASSWORD: password } : process.env };
}
