/**
 * The SQL a replay sends for each change of the stream, built from the target database's own
 * catalog (read again after every DDL): keys, column types, generated and identity columns.
 * Values stay in test_decoding's text form and are cast by PostgreSQL's input functions.
 */
import pg from 'pg';
import type { RowValues } from '../pitr/types.js';
import { UNCHANGED_TOAST } from './changes.js';
import { qualified } from './catalog.js';

export interface TargetColumn {
  type: string;
  /** GENERATED ALWAYS AS (…) STORED: never written. */
  generated: boolean;
  /** GENERATED ALWAYS AS IDENTITY: written only with OVERRIDING SYSTEM VALUE, never updated. */
  identityAlways: boolean;
}

export interface TargetTable {
  schema: string;
  name: string;
  columns: Map<string, TargetColumn>;
  /** The primary key, else the replica identity index; empty: rows are found by every old value. */
  key: string[];
  /** The key is the primary key (ON CONFLICT can name it). */
  primary: boolean;
}

/** Every table of the user schemas, by `schema\0name`. */
export async function readTargetTables(c: pg.ClientBase): Promise<Map<string, TargetTable>> {
  const { rows } = await c.query<{
    schema: string;
    name: string;
    col: string;
    type: string;
    generated: boolean;
    always: boolean;
    pk: number | null;
    ri: number | null;
  }>(
    `SELECT n.nspname AS schema, c.relname AS name, a.attname AS col,
            format_type(a.atttypid, a.atttypmod) AS type,
            a.attgenerated <> '' AS generated, a.attidentity = 'a' AS always,
            (SELECT array_position(i.indkey::int2[], a.attnum) FROM pg_index i
              WHERE i.indrelid = c.oid AND i.indisprimary) AS pk,
            (SELECT array_position(i.indkey::int2[], a.attnum) FROM pg_index i
              WHERE i.indrelid = c.oid AND i.indisreplident) AS ri
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname NOT LIKE 'pg\\_%'
      ORDER BY n.nspname, c.relname, a.attnum`,
  );
  const out = new Map<string, TargetTable & { pks: [number, string][]; ris: [number, string][] }>();
  for (const r of rows) {
    const id = `${r.schema}\u0000${r.name}`;
    let t = out.get(id);
    if (!t) {
      t = { schema: r.schema, name: r.name, columns: new Map(), key: [], primary: false, pks: [], ris: [] };
      out.set(id, t);
    }
    t.columns.set(r.col, { type: r.type, generated: r.generated, identityAlways: r.always });
    if (r.pk !== null) t.pks.push([r.pk, r.col]);
    if (r.ri !== null) t.ris.push([r.ri, r.col]);
  }
  const ordered = (k: [number, string][]) => k.sort((a, b) => a[0] - b[0]).map(([, c]) => c);
  for (const t of out.values()) {
    t.primary = t.pks.length > 0;
    t.key = t.primary ? ordered(t.pks) : ordered(t.ris);
  }
  return out;
}

const q = pg.escapeIdentifier;

/** A value as a typed literal: NULL, or the printed text through the column type's input function. */
export function literal(v: string | null, col: TargetColumn | undefined): string {
  if (v === null) return 'NULL';
  const text = pg.escapeLiteral(v);
  return col ? `CAST(${text} AS ${col.type})` : text;
}

/** Columns of a new row the target may be given: known, not generated, not an unchanged toasted value. */
function writable(t: TargetTable, row: RowValues): string[] {
  return Object.keys(row).filter((c) => {
    const col = t.columns.get(c);
    return col && !col.generated && row[c] !== UNCHANGED_TOAST;
  });
}

/**
 * `WHERE` finding one row by its key (the old key for an UPDATE that changed it). Without a key:
 * every old value compared as text, one row only (REPLICA IDENTITY FULL, duplicates possible).
 */
export function whereKey(t: TargetTable, key: RowValues): string {
  if (t.key.length > 0 && t.key.every((k) => key[k] !== undefined)) {
    return t.key
      .map((k) => (key[k] === null ? `${q(k)} IS NULL` : `${q(k)} = ${literal(key[k]!, t.columns.get(k))}`))
      .join(' AND ');
  }
  const cols = Object.keys(key).filter((c) => t.columns.has(c) && key[c] !== UNCHANGED_TOAST);
  const match = cols
    .map((c) => `${q(c)}::text IS NOT DISTINCT FROM ${key[c] === null ? 'NULL' : pg.escapeLiteral(key[c]!)}`)
    .join(' AND ');
  return `ctid = (SELECT ctid FROM ${qualified(t)} WHERE ${match || 'true'} LIMIT 1)`;
}

/** The key's values out of a row (an UPDATE's new row names its key when the key did not change). */
export const keyOfRow = (t: TargetTable, row: RowValues): RowValues =>
  t.key.length > 0 && t.key.every((k) => row[k] !== undefined)
    ? Object.fromEntries(t.key.map((k) => [k, row[k]!]))
    : row;

/** One multi-row INSERT for rows of one table that name the same columns. */
export function insertRows(t: TargetTable, rows: RowValues[]): string {
  const cols = writable(t, rows[0]!);
  const values = rows.map((r) => `(${cols.map((c) => literal(r[c]!, t.columns.get(c))).join(', ')})`);
  return `INSERT INTO ${qualified(t)} (${cols.map(q).join(', ')}) OVERRIDING SYSTEM VALUE VALUES ${values.join(', ')}`;
}

/** Columns an INSERT of this row would name: rows with the same list share one INSERT. */
export const insertShape = (t: TargetTable, row: RowValues): string => writable(t, row).join('\u0000');

/** An UPDATE by key; identity-always columns are left alone (they can only be set to DEFAULT). */
export function updateRow(t: TargetTable, row: RowValues, old: RowValues | undefined): string | undefined {
  const cols = writable(t, row).filter((c) => !t.columns.get(c)!.identityAlways);
  if (cols.length === 0) return undefined;
  const set = cols.map((c) => `${q(c)} = ${literal(row[c]!, t.columns.get(c))}`).join(', ');
  return `UPDATE ${qualified(t)} SET ${set} WHERE ${whereKey(t, old ?? keyOfRow(t, row))}`;
}

/**
 * One-wedding replay: the row may not be there (it moved into the wedding with this UPDATE), so
 * the new row is inserted or, when its key is there, written over. A changed key leaves first.
 */
export function upsertRow(t: TargetTable, row: RowValues, old: RowValues | undefined): string[] {
  if (!t.primary) return [updateRow(t, row, old)].filter((s): s is string => s !== undefined);
  const out: string[] = [];
  if (old) out.push(deleteRow(t, old));
  const cols = writable(t, row);
  const set = cols
    .filter((c) => !t.key.includes(c) && !t.columns.get(c)!.identityAlways)
    .map((c) => `${q(c)} = EXCLUDED.${q(c)}`);
  out.push(
    `${insertRows(t, [row])} ON CONFLICT (${t.key.map(q).join(', ')}) ${
      set.length ? `DO UPDATE SET ${set.join(', ')}` : 'DO NOTHING'
    }`,
  );
  return out;
}

export const deleteRow = (t: TargetTable, key: RowValues): string =>
  `DELETE FROM ${qualified(t)} WHERE ${whereKey(t, key)}`;

/** Does `key` name every key column, none NULL (so rows can be listed in one IN)? */
export const hasKey = (t: TargetTable, key: RowValues): boolean =>
  t.key.length > 0 && t.key.every((k) => key[k] !== undefined && key[k] !== null);

/** One DELETE for many keys (each `hasKey`). */
export function deleteKeys(t: TargetTable, keys: RowValues[]): string {
  const tuple = (key: RowValues) => `(${t.key.map((k) => literal(key[k]!, t.columns.get(k))).join(', ')})`;
  return `DELETE FROM ${qualified(t)} WHERE (${t.key.map(q).join(', ')}) IN (${keys.map(tuple).join(', ')})`;
}

export function truncateTables(tables: [string, string][], cascade: boolean, restart: boolean): string {
  const names = tables.map(([schema, name]) => `ONLY ${qualified({ schema, name })}`).join(', ');
  return `TRUNCATE ${names}${restart ? ' RESTART IDENTITY' : ''}${cascade ? ' CASCADE' : ''}`;
}
