/**
 * One wedding after its replay: rows that left the wedding took the rows below them along (a guest
 * moved to another wedding takes its answers), which the stream does not say; and references to
 * rows the database does not hold are settled as a one-wedding restore settles them.
 */
import pg from 'pg';
import type { PgTree } from '../tree.js';
import { foreignKeyOrder, qualified, readTenancyFacts } from './catalog.js';
import { foreignKeysOf, settleReferences, type ReferenceReport } from './references.js';
import { readTargetTables } from './replay-sql.js';
import { withClient } from './restore-target.js';
import { weddingRowsQuery } from './merge.js';
import { rowsOf } from './tenant-rows.js';

const q = pg.escapeIdentifier;

/**
 * Deletes rows of FK-reached wedding tables whose first step towards the wedding names a row no
 * longer there, parents first so the deletes go down the path. The rows deleted.
 */
export async function pruneMovedRows(c: pg.ClientBase, tree: PgTree): Promise<number> {
  const have = await readTargetTables(c);
  const has = (t: { schema: string; name: string }) => have.has(`${t.schema}\u0000${t.name}`);
  // a table DDL renamed or dropped since the base point is not followed
  const reached = tree.tables.filter(
    (t) => t.scopeKind === 'wedding' && t.tenantVia && has(t) && has(t.tenantVia.path[0]!.to),
  );
  let deleted = 0;
  for (const t of await foreignKeyOrder(c, reached)) {
    const hop = t.tenantVia!.path[0]!;
    const match = hop.columns.map((col, i) => `p.${q(hop.toColumns[i]!)} = c.${q(col)}`).join(' AND ');
    const set = hop.columns.map((col) => `c.${q(col)} IS NOT NULL`).join(' AND ');
    const r = await c.query(
      `DELETE FROM ${qualified(t)} c WHERE ${set} AND NOT EXISTS (SELECT 1 FROM ${qualified(hop.to)} p WHERE ${match})`,
    );
    deleted += r.rowCount ?? 0;
  }
  return deleted;
}

/**
 * Prunes moved rows, then (unless `references` is false: a merge checks them against the live
 * database instead) settles every foreign key of the database at url (references.ts).
 */
export async function settleWedding(
  url: string,
  tree: PgTree,
  references = true,
): Promise<{ pruned: number; nulled: ReferenceReport[] }> {
  return withClient(url, async (c) => {
    await c.query('BEGIN');
    try {
      const pruned = await pruneMovedRows(c, tree);
      if (!references) {
        await c.query('COMMIT');
        return { pruned, nulled: [] };
      }
      const tables = await readTargetTables(c);
      const keys = foreignKeysOf(await readTenancyFacts(c));
      const nulled = await settleReferences(
        c,
        keys,
        (t) => [qualified(t)],
        (t) => qualified(t),
        (t) => tables.get(`${t.schema}\u0000${t.name}`)?.key ?? [],
      );
      await c.query('COMMIT');
      return { pruned, nulled };
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });
}

/**
 * Deletes these weddings' rows from every wedding table, children first (an FK-reached table by
 * its path while the rows it passes through are there): the erasure ledger re-applied after a
 * replay, whatever the stream held. The rows deleted.
 */
export async function deleteWeddings(url: string, tree: PgTree, weddings: string[]): Promise<number> {
  if (weddings.length === 0) return 0;
  return withClient(url, async (c) => {
    const have = await readTargetTables(c);
    const tables = tree.tables.filter(
      (t) => t.scopeKind === 'wedding' && have.has(`${t.schema}\u0000${t.name}`),
    );
    let deleted = 0;
    await c.query('BEGIN');
    try {
      await c.query('SET LOCAL session_replication_role = replica');
      for (const t of (await foreignKeyOrder(c, tables)).reverse()) {
        for (const w of weddings) {
          const r = await c.query(
            `DELETE FROM ${rowsOf(t)} d WHERE (d.tableoid, d.ctid) IN (${weddingRowsQuery(t, ['tableoid', 'ctid'], w)})`,
          );
          deleted += r.rowCount ?? 0;
        }
      }
      await c.query('COMMIT');
      return deleted;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });
}
