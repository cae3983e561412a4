/**
 * The SQL that reads a table's rows with the tenant they belong to, for tables whose tenant is
 * reached through foreign keys (answers → guests → weddings): the joins along the path, the
 * resolved tenant as an expression, and the rows a change on the path may have moved.
 */
import pg from 'pg';
import type { PgTableInfo } from './catalog.js';

/** One foreign key on a table's way to its tenant, as a backup records it. */
export interface TenantHop {
  columns: string[];
  to: { schema: string; name: string; partitioned?: boolean };
  toColumns: string[];
}

/** How an FK-reached table's rows find their tenant: the keys followed, then the column at the end. */
export interface TenantVia {
  path: TenantHop[];
  column: string;
}

/** The alias of the table being read; its joined path tables are j1, j2… */
export const ROW = 'r';

const q = pg.escapeIdentifier;

/**
 * What a table's rows are read from: a partitioned table whole (its partitions are not tables of
 * their own in the tree), any other table ONLY (see rowsQuery).
 */
export const rowsOf = (t: { schema: string; name: string; partitioned?: boolean | undefined }): string =>
  `${t.partitioned ? '' : 'ONLY '}${q(t.schema)}.${q(t.name)}`;

export interface TenantJoins {
  /** LEFT JOINs after `FROM <table> r`: a row whose key is NULL or dangling gets a NULL tenant. */
  joins: string;
  /** The tenant of row r. */
  expr: string;
  /** The path tables read (their rows' changes can move rows of r to another tenant), with aliases. */
  joined: { hop: TenantHop; alias: string }[];
}

/**
 * The joins an FK-reached table needs. A key carries the tenant along when the referenced columns
 * include it (a composite key `(wedding_id, guest_id)`): the tenant is then read from the
 * referencing row itself, and the tables beyond need no join.
 */
export function tenantJoins(via: TenantVia): TenantJoins {
  let need = via.column;
  let depth = via.path.length; // the table `need` is a column of: 0 is r, i is path[i - 1].to
  while (depth > 0) {
    const hop = via.path[depth - 1]!;
    const at = hop.toColumns.indexOf(need);
    if (at < 0) break;
    need = hop.columns[at]!;
    depth--;
  }
  const alias = (i: number) => (i === 0 ? ROW : `j${i}`);
  const joined = via.path.slice(0, depth).map((hop, i) => ({ hop, alias: alias(i + 1) }));
  const joins = joined
    .map(({ hop, alias: a }, i) => {
      const on = hop.columns.map((c, k) => `${a}.${q(hop.toColumns[k]!)} = ${alias(i)}.${q(c)}`);
      return ` LEFT JOIN ${rowsOf(hop.to)} ${a} ON ${on.join(' AND ')}`;
    })
    .join('');
  return { joins, expr: `${alias(depth)}.${q(need)}`, joined };
}

export interface RowsQuery {
  /** The resolved tenant as the first field (FK-reached tables only): a backup cuts on it, then drops it. */
  tenantField?: boolean;
  /** A condition on row r. */
  where?: string;
}

/**
 * The SELECT whose COPY output is the table's backup, in dump order: tenant first, then primary
 * key, so weddings are contiguous. A partitioned table is read (and restored) through its root, so
 * its rows are one stream whatever the partitioning; any other table ONLY, since an inheritance
 * child (INHERITS) is a table of its own whose rows a plain read of its parent would include again.
 * A table without a primary key is ordered by its tenant only and otherwise keeps heap order
 * (synchronised scans off): ordering by every column would need a sort of the whole table and
 * fails for types without ordering (json, point, xml); the restore writes the rows back in this
 * same order.
 */
export function rowsQuery(t: PgTableInfo, o: RowsQuery = {}): string {
  const via = t.tenantVia ? tenantJoins(t.tenantVia) : undefined;
  const tenant = via ? via.expr : t.tenantColumn ? `${ROW}.${q(t.tenantColumn)}` : undefined;
  const key = t.primaryKey.filter((k) => k !== t.tenantColumn).map((k) => `${ROW}.${q(k)}`);
  const order = [...(tenant ? [tenant] : []), ...key];
  const fields = [
    ...(o.tenantField && via ? [via.expr] : []),
    ...t.columns.map((c) => `${ROW}.${q(c.name)}`),
  ];
  return (
    `SELECT ${fields.join(', ')} FROM ${rowsOf(t)} ${ROW}${via?.joins ?? ''}` +
    (o.where ? ` WHERE ${o.where}` : '') +
    (order.length ? ` ORDER BY ${order.join(', ')}` : '')
  );
}

/**
 * The primary keys (as text) of the table's rows whose path passes through a row of the joined
 * table `alias` whose primary key is among `keys` (as text): the rows a change there may have moved
 * to another tenant. A composite key is matched column by column, a superset of the pairs: naming
 * more rows than moved is safe, fewer would not be.
 */
export function rowsThroughQuery(
  t: PgTableInfo,
  alias: string,
  targetKey: { name: string; type: string }[],
  keys: string[][],
): { text: string; values: string[][] } {
  const via = tenantJoins(t.tenantVia!);
  const own = t.primaryKey.map((k) => `${ROW}.${q(k)}::text`).join(', ');
  // the parameter cast to the key's type, not the column to text, so the key's index serves
  const match = targetKey
    .map((k, i) => `${alias}.${q(k.name)} = ANY(CAST($${i + 1}::text[] AS ${k.type}[]))`)
    .join(' AND ');
  return {
    text: `SELECT DISTINCT ${own} FROM ${rowsOf(t)} ${ROW}${via.joins} WHERE ${match}`,
    values: targetKey.map((_, i) => keys.map((k) => k[i]!)),
  };
}
