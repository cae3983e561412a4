/**
 * Foreign keys a one-wedding restore would leave dangling: a row of the wedding that names a row
 * the target does not hold (another wedding's guest as a plus-one, a supplier deleted since). A
 * nullable reference is set to NULL and reported; a NOT NULL one refuses the restore with the list.
 */
import pg from 'pg';
import { ConflictError } from '../../errors.js';
import type { TenancyTable } from './tenancy.js';
import { tableLabel } from './tenancy.js';

/** A foreign key as a backup records it. */
export interface PgForeignKey {
  table: { schema: string; name: string };
  name: string;
  columns: string[];
  /** Per column: may it be NULL. */
  nullable: boolean[];
  references: { schema: string; name: string };
  referencedColumns: string[];
}

/** Every foreign key of the tables read for tenancy (a partitioned table's once, on its root). */
export function foreignKeysOf(tables: TenancyTable[]): PgForeignKey[] {
  return tables.flatMap((t) =>
    t.foreignKeys.map((k) => ({
      table: { schema: t.schema, name: t.name },
      name: k.name,
      columns: k.columns,
      nullable: k.columns.map((c) => !t.columns.find((x) => x.name === c)?.notNull),
      references: k.references,
      referencedColumns: k.referencedColumns,
    })),
  );
}

/** What the restore did about one foreign key: rows nulled, or rows that refuse it. */
export interface ReferenceReport {
  table: string;
  constraint: string;
  references: string;
  rows: number;
  /** Up to ten rows: `(key)=(values) → (referenced columns)=(values)`. */
  sample: string[];
}

/** Where a table's rows are read in the target: the table itself, or a staging copy of them. */
export type Relation = (t: { schema: string; name: string }) => string[];

const q = pg.escapeIdentifier;
const SAMPLE = 10;

/**
 * Fixes or lists the dangling references of `keys`' rows. `rows(t)` names the relations holding a
 * table's rows (a live table and the staged rows beside it); `target(t)` the one the restore writes
 * (updated when a reference is nulled). Throws a ConflictError listing the NOT NULL ones.
 */
export async function settleReferences(
  c: pg.ClientBase,
  keys: PgForeignKey[],
  rows: Relation,
  target: (t: { schema: string; name: string }) => string,
  keyOf: (t: { schema: string; name: string }) => string[],
): Promise<ReferenceReport[]> {
  const nulled: ReferenceReport[] = [];
  const refused: ReferenceReport[] = [];
  for (const fk of keys) {
    const set = fk.columns.map((col) => `c.${q(col)} IS NOT NULL`);
    const match = fk.columns.map((col, i) => `p.${q(fk.referencedColumns[i]!)} = c.${q(col)}`).join(' AND ');
    const missing = rows(fk.references)
      .map((rel) => `NOT EXISTS (SELECT 1 FROM ${rel} p WHERE ${match})`)
      .join(' AND ');
    const where = `${set.join(' AND ')} AND ${missing}`;
    const key = keyOf(fk.table);
    const shown = (cols: string[]) => cols.map((x) => `c.${q(x)}::text`).join(` || ', ' || `) || `''`;
    const { rows: found } = await c.query<{ n: number; sample: string[] | null }>(
      `SELECT count(*)::int AS n,
              (array_agg('(' || ${shown(key)} || ') → (' || ${shown(fk.columns)} || ')'))[1:${SAMPLE}] AS sample
         FROM ${target(fk.table)} c WHERE ${where}`,
    );
    const n = found[0]!.n;
    if (n === 0) continue;
    const report: ReferenceReport = {
      table: tableLabel(fk.table),
      constraint: fk.name,
      references: `${tableLabel(fk.references)} (${fk.referencedColumns.join(', ')})`,
      rows: n,
      sample: found[0]!.sample ?? [],
    };
    const nullable = fk.columns.filter((_, i) => fk.nullable[i]);
    if (nullable.length === 0) {
      refused.push(report);
      continue;
    }
    // MATCH SIMPLE: one NULL column and the key is not checked
    await c.query(
      `UPDATE ${target(fk.table)} c SET ${nullable.map((x) => `${q(x)} = NULL`).join(', ')} WHERE ${where}`,
    );
    nulled.push(report);
  }
  if (refused.length > 0) {
    const list = refused.map(
      (r) => `${r.table} ${r.constraint} → ${r.references}: ${r.rows} rows (${r.sample.join('; ')})`,
    );
    throw new ConflictError(
      `the restore would leave NOT NULL references to rows the target does not hold: ${list.join(' | ')}`,
      { details: { references: refused } },
    );
  }
  return nulled;
}
