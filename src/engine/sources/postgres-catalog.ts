/** Reads the source database's shape: tables, columns, keys, tenant columns and sequences. */
import pg from 'pg';
import { ConfigError } from '../../errors.js';

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
  scopeKind: 'wedding' | 'supplier' | 'platform';
}

export interface SchemaSettings {
  tenantKey: string;
  /** 'table.column' */
  ceremonyDate: string;
  supplierKey?: string | undefined;
  excludeTables?: string[];
}

export const qualified = (t: { schema: string; name: string }): string =>
  `${pg.escapeIdentifier(t.schema)}.${pg.escapeIdentifier(t.name)}`;

export async function readTables(client: pg.ClientBase, s: SchemaSettings): Promise<PgTableInfo[]> {
  const { rows } = await client.query<{ oid: number; schema: string; name: string }>(
    `SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
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
  const [tenantTable, ceremonyColumn] = s.ceremonyDate.split('.') as [string, string];
  const exclude = new Set(s.excludeTables ?? []);
  const tables: PgTableInfo[] = [];
  for (const r of rows) {
    if (exclude.has(r.name) || exclude.has(`${r.schema}.${r.name}`)) continue;
    const columns = cols.rows.filter((c) => c.oid === r.oid).map(({ name, type }) => ({ name, type }));
    const primaryKey = pks.rows.filter((p) => p.oid === r.oid).map((p) => p.name);
    const has = (c: string) => columns.some((x) => x.name === c);
    let tenantColumn: string | undefined;
    let scopeKind: PgTableInfo['scopeKind'] = 'platform';
    if (r.name === tenantTable && has(ceremonyColumn)) {
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
    tables.push({ schema: r.schema, name: r.name, columns, primaryKey, tenantColumn, scopeKind });
  }
  return tables;
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

/** The SELECT whose COPY output is the table's backup: tenant first, then primary key, so weddings are contiguous. */
export function dumpQuery(t: PgTableInfo): string {
  const cols = t.columns.map((c) => pg.escapeIdentifier(c.name)).join(', ');
  const order = [...new Set([...(t.tenantColumn ? [t.tenantColumn] : []), ...t.primaryKey])].map((c) =>
    pg.escapeIdentifier(c),
  );
  return `SELECT ${cols} FROM ${qualified(t)}${order.length ? ` ORDER BY ${order.join(', ')}` : ''}`;
}
