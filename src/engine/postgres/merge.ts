/**
 * Merges one wedding's rows, rebuilt in a scratch database, into a live database in one
 * transaction: staged in temporary tables, refused on any key the live database already holds or
 * any referenced row it lacks (both listed), else inserted in foreign-key order with the live
 * database's own checks on. A dry run stages and counts, then rolls back.
 */
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { ConflictError } from '../../errors.js';
import type { PgTable, PgTree } from '../tree.js';
import { foreignKeyOrder, qualified, readTenancyFacts } from './catalog.js';
import { foreignKeysOf } from './references.js';
import { readTargetTables } from './replay-sql.js';
import { rowsOf, tenantJoins } from './tenant-rows.js';
import { withClient } from './restore-target.js';

export interface MergeReport {
  inserted: Record<string, number>;
  conflicts: { table: string; count: number; keys: string[] }[];
  missingReferences: { table: string; constraint: string; count: number; rows: string[] }[];
}

const q = pg.escapeIdentifier;
const SAMPLE = 10;
const label = (t: { schema: string; name: string }) => `${t.schema}.${t.name}`;

/** Which weddings' rows: one, or every wedding but these (a staged recovery's rest). */
export type Weddings = string | { except: string[] };

/** The weddings' own rows of a table (a mixed table's platform rows are no wedding's). */
export function weddingRowsQuery(t: PgTable, columns: string[], weddings: Weddings): string {
  const list = columns.map((c) => `r.${q(c)}`).join(', ');
  const via = t.tenantColumn ? undefined : tenantJoins(t.tenantVia!);
  const tenant = via ? `(${via.expr})` : `r.${q(t.tenantColumn!)}`;
  const where =
    typeof weddings === 'string'
      ? `${tenant}::text = ${pg.escapeLiteral(weddings)}`
      : `${tenant} IS NOT NULL AND ${tenant}::text <> ALL (ARRAY[${weddings.except.map((w) => pg.escapeLiteral(w)).join(', ')}]::text[])`;
  return `SELECT ${list} FROM ${rowsOf(t)} r${via?.joins ?? ''} WHERE ${where}`;
}

/**
 * Stages the wedding's rows of `scratchUrl` in `live` (temporary tables), checks keys and
 * references, and inserts them unless `dryRun` or refused. Throws a ConflictError carrying the
 * report when refused; returns the report (counts) otherwise.
 */
export async function mergeWedding(
  scratchUrl: string,
  liveUrl: string,
  tree: PgTree,
  wedding: Weddings,
  dryRun: boolean,
): Promise<MergeReport> {
  const report: MergeReport = { inserted: {}, conflicts: [], missingReferences: [] };
  return withClient(scratchUrl, (src) =>
    withClient(liveUrl, async (live) => {
      const liveTables = await readTargetTables(live);
      const scratchTables = await readTargetTables(src);
      const present = (t: PgTable) =>
        liveTables.has(`${t.schema}\u0000${t.name}`) && scratchTables.has(`${t.schema}\u0000${t.name}`);
      const order = await foreignKeyOrder(
        live,
        tree.tables.filter((t) => t.scopeKind === 'wedding' && present(t)),
      );
      const stage = new Map(order.map((t, i) => [label(t), `wedvault_merge_${i}`]));
      await live.query('BEGIN');
      try {
        for (const t of order) {
          const lt = liveTables.get(`${t.schema}\u0000${t.name}`)!;
          const st = scratchTables.get(`${t.schema}\u0000${t.name}`)!;
          const cols = [...lt.columns.keys()].filter(
            (c) => !lt.columns.get(c)!.generated && st.columns.has(c),
          );
          const into = stage.get(label(t))!;
          await live.query(`CREATE TEMP TABLE ${into} (LIKE ${qualified(t)}) ON COMMIT DROP`);
          const list = cols.map(q).join(', ');
          await pipeline(
            src.query(copyTo(`COPY (${weddingRowsQuery(t, cols, wedding)}) TO STDOUT`)),
            live.query(copyFrom(`COPY ${into} (${list}) FROM STDIN`)),
          );
          const n = (await live.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${into}`)).rows[0]!.n;
          if (n > 0) report.inserted[label(t)] = n;
          if (lt.key.length === 0) continue;
          const match = lt.key.map((k) => `l.${q(k)} = s.${q(k)}`).join(' AND ');
          const shown = lt.key.map((k) => `s.${q(k)}::text`).join(` || ', ' || `);
          const { rows } = await live.query<{ n: number; keys: string[] | null }>(
            `SELECT count(*)::int AS n, (array_agg('(' || ${shown} || ')'))[1:${SAMPLE}] AS keys
               FROM ${into} s WHERE EXISTS (SELECT 1 FROM ${rowsOf(t)} l WHERE ${match})`,
          );
          if (rows[0]!.n > 0)
            report.conflicts.push({ table: label(t), count: rows[0]!.n, keys: rows[0]!.keys ?? [] });
        }
        await missingReferences(live, stage, report);
        const refused = report.conflicts.length > 0 || report.missingReferences.length > 0;
        if (!refused && !dryRun) {
          for (const t of order) {
            const lt = liveTables.get(`${t.schema}\u0000${t.name}`)!;
            const list = [...lt.columns.keys()]
              .filter((c) => !lt.columns.get(c)!.generated)
              .map(q)
              .join(', ');
            await live.query(
              `INSERT INTO ${qualified(t)} (${list}) OVERRIDING SYSTEM VALUE SELECT ${list} FROM ${stage.get(label(t))}`,
            );
          }
          await live.query('COMMIT');
        } else await live.query('ROLLBACK');
      } catch (err) {
        await live.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
      if (!dryRun && (report.conflicts.length > 0 || report.missingReferences.length > 0))
        throw refusal(wedding, report);
      return report;
    }),
  );
}

/** References from staged rows to rows neither the live database nor the staged rows hold. */
async function missingReferences(live: pg.ClientBase, stage: Map<string, string>, report: MergeReport) {
  const keys = foreignKeysOf(await readTenancyFacts(live)).filter((k) => stage.has(label(k.table)));
  for (const fk of keys) {
    const from = stage.get(label(fk.table))!;
    const match = fk.columns.map((c, i) => `p.${q(fk.referencedColumns[i]!)} = c.${q(c)}`).join(' AND ');
    const homes = [
      rowsOf(fk.references),
      ...(stage.has(label(fk.references)) ? [stage.get(label(fk.references))!] : []),
    ];
    const where = [
      ...fk.columns.map((c) => `c.${q(c)} IS NOT NULL`),
      ...homes.map((h) => `NOT EXISTS (SELECT 1 FROM ${h} p WHERE ${match})`),
    ].join(' AND ');
    const shown = fk.columns.map((c) => `c.${q(c)}::text`).join(` || ', ' || `);
    const { rows } = await live.query<{ n: number; rows: string[] | null }>(
      `SELECT count(*)::int AS n, (array_agg(DISTINCT '(' || ${shown} || ')'))[1:${SAMPLE}] AS rows
         FROM ${from} c WHERE ${where}`,
    );
    if (rows[0]!.n > 0)
      report.missingReferences.push({
        table: label(fk.table),
        constraint: fk.name,
        count: rows[0]!.n,
        rows: (rows[0]!.rows ?? []).map((r) => `${r} → ${label(fk.references)}`),
      });
  }
}

function refusal(weddings: Weddings, r: MergeReport): ConflictError {
  const what =
    typeof weddings === 'string' ? `wedding ${weddings}` : `every wedding but ${weddings.except.join(', ')}`;
  const parts = [
    ...r.conflicts.map((c) => `${c.table}: ${c.count} keys already live (${c.keys.join('; ')})`),
    ...r.missingReferences.map(
      (m) =>
        `${m.table} ${m.constraint}: ${m.count} rows name rows the live database lacks (${m.rows.join('; ')})`,
    ),
  ];
  return new ConflictError(`merge of ${what} refused, nothing changed: ${parts.join(' | ')}`, {
    details: { merge: r },
  });
}
