/**
 * Checks of a database after a point-in-time recovery, as a drill checks a restore: row counts,
 * foreign keys (replay ran in replica mode, so nothing checked them on the way), tenant rows
 * owned by a wedding, the payment total. There is no recorded digest of the target moment to
 * compare with: the base point itself is checked against its backup before the replay (drill-checks.ts).
 */
import pg from 'pg';
import type { PgTree } from '../tree.js';
import { qualified, readTenancyFacts } from './catalog.js';
import { foreignKeysOf } from './references.js';
import { readTargetTables } from './replay-sql.js';
import { weddingRowsQuery } from './merge.js';
import { withClient } from './restore-target.js';

export interface RecoveryChecks {
  ok: boolean;
  problems: string[];
  checks: { rows: Record<string, number>; paymentTotal?: string | undefined; foreignKeys: number };
}

const q = pg.escapeIdentifier;

/** The tables of the tree that still exist in the target (DDL may have renamed some). */
const existing = (tree: PgTree, names: Set<string>) =>
  tree.tables.filter((t) => names.has(`${t.schema}.${t.name}`));

/**
 * Checks the database at url. With `wedding`, row counts and the payment total are that wedding's
 * rows only (what a merge moved).
 */
export async function checkRecovered(
  url: string,
  tree: PgTree,
  opts: { wedding?: string | undefined; paymentColumn?: string | undefined; foreignKeys?: boolean } = {},
): Promise<RecoveryChecks> {
  return withClient(url, async (c) => {
    const problems: string[] = [];
    const tables = await readTargetTables(c);
    const names = new Set([...tables.values()].map((t) => `${t.schema}.${t.name}`));
    const rows: Record<string, number> = {};
    const w = opts.wedding;
    const counted =
      w === undefined
        ? [...tables.values()].map((t) => [t, `SELECT FROM ONLY ${qualified(t)}`] as const)
        : existing(tree, names)
            .filter((t) => t.scopeKind === 'wedding')
            .map((t) => [t, weddingRowsQuery(t, [], w)] as const);
    for (const [t, from] of counted) {
      const { rows: n } = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM (${from}) x`);
      rows[`${t.schema}.${t.name}`] = n[0]!.n;
    }
    // every foreign key, as VALIDATE CONSTRAINT would (MATCH SIMPLE: a NULL column passes)
    const keys = opts.foreignKeys === false ? [] : foreignKeysOf(await readTenancyFacts(c));
    for (const fk of keys) {
      const match = fk.columns
        .map((col, i) => `p.${q(fk.referencedColumns[i]!)} = c.${q(col)}`)
        .join(' AND ');
      const { rows: bad } = await c.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${qualified(fk.table)} c
          WHERE ${fk.columns.map((col) => `c.${q(col)} IS NOT NULL`).join(' AND ')}
            AND NOT EXISTS (SELECT 1 FROM ${qualified(fk.references)} p WHERE ${match})`,
      );
      if (bad[0]!.n > 0)
        problems.push(
          `foreign_key: ${fk.table.schema}.${fk.table.name} ${fk.name}: ${bad[0]!.n} rows name no row`,
        );
    }
    problems.push(...(await orphans(c, tree, names)));
    const paymentTotal = await payments(c, tree, names, opts);
    return { ok: problems.length === 0, problems, checks: { rows, paymentTotal, foreignKeys: keys.length } };
  });
}

/** Rows of tables with the tenant column whose wedding is not in the weddings table. */
async function orphans(c: pg.ClientBase, tree: PgTree, names: Set<string>): Promise<string[]> {
  const tables = existing(tree, names);
  const weddings = tables.find(
    (t) =>
      t.scopeKind === 'wedding' &&
      t.tenantColumn &&
      t.primaryKey.length === 1 &&
      t.primaryKey[0] === t.tenantColumn &&
      t.columns.length > 1,
  );
  if (!weddings) return [];
  const out: string[] = [];
  for (const t of tables.filter((x) => x.scopeKind === 'wedding' && x.tenantColumn && x !== weddings)) {
    const col = q(t.tenantColumn!);
    const { rows } = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${qualified(t)} x WHERE x.${col} IS NOT NULL AND NOT EXISTS
         (SELECT 1 FROM ${qualified(weddings)} w WHERE w.${q(weddings.tenantColumn!)} = x.${col})`,
    );
    if (rows[0]!.n > 0) out.push(`orphans: ${t.schema}.${t.name}: ${rows[0]!.n} rows of no wedding`);
  }
  return out;
}

/** The payment column's exact total (the wedding's only, with `wedding`); undefined without one. */
async function payments(
  c: pg.ClientBase,
  tree: PgTree,
  names: Set<string>,
  opts: { wedding?: string | undefined; paymentColumn?: string | undefined },
): Promise<string | undefined> {
  const [table, column] = (opts.paymentColumn ?? 'payments.amount').split('.') as [string, string];
  const t = existing(tree, names).find((x) => x.name === table && x.columns.some((y) => y.name === column));
  if (!t) return undefined;
  const from =
    opts.wedding === undefined
      ? `SELECT ${q(column)} FROM ${qualified(t)}`
      : weddingRowsQuery(t, [column], opts.wedding);
  const { rows } = await c.query<{ s: string | null }>(
    `SELECT coalesce(sum(x.${q(column)}), 0)::text AS s FROM (${from}) x`,
  );
  return rows[0]!.s ?? '0';
}
