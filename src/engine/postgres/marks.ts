/** What tells whether a table changed since the parent backup, read in this backup's snapshot. */
import pg from 'pg';
import { qualified, rowsOf, type PgTableInfo } from './catalog.js';
import type { PgTable } from '../tree.js';

/** Change marks of every table, read in the backup's snapshot (see PgTable.marks). */
export async function readMarks(client: pg.ClientBase): Promise<Map<string, string>> {
  const { rows } = await client.query<{ schema: string; name: string; marks: string }>(
    `SELECT n.nspname AS schema, c.relname AS name,
            concat_ws('|', c.oid,
              (SELECT string_agg(concat_ws(':', l.relfilenode, l.relfrozenxid,
                        coalesce(st.n_tup_ins + st.n_tup_upd + st.n_tup_del, -1)), ',' ORDER BY l.oid)
                 FROM pg_class l
                 LEFT JOIN pg_stat_user_tables st ON st.relid = l.oid
                WHERE l.relkind = 'r'
                  AND (l.oid = c.oid OR l.oid IN (SELECT relid FROM pg_partition_tree(c.oid))))) AS marks
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition`,
  );
  return new Map(rows.map((r) => [qualified(r), r.marks]));
}

/**
 * True when the table (whose change marks equal the parent's) holds exactly the rows it held in the
 * parent's snapshot: same row count, and no visible row written by a transaction the parent's snapshot did not see.
 * A row's xmin is compared modulo 2^32 with the parent's xmax (valid for 2^31 transactions; older
 * parents are never trusted); a frozen xmin reads as 2, older than any snapshot, which is why the
 * marks (the frozen horizon among them) must match too.
 */
export async function rowsUnchangedSince(
  client: pg.ClientBase,
  t: PgTableInfo,
  parent: PgTable,
  parentSnapshot: string,
): Promise<boolean> {
  const [, xmax, xip = ''] = parentSnapshot.split(':');
  const { rows } = await client.query<{ n: string; u: string; age: string }>(
    `SELECT count(*)::text AS n,
            count(*) FILTER (WHERE ((t.xmin::text::bigint - $1 + 4294967296) % 4294967296) < 2147483648
                                OR t.xmin::text::bigint = ANY($2::bigint[]))::text AS u,
            (pg_snapshot_xmax(pg_current_snapshot())::text::bigint - $3::bigint)::text AS age
       FROM ${rowsOf(t)} t`,
    [
      Number(BigInt(xmax!) & 0xffffffffn),
      xip ? xip.split(',').map((x) => Number(BigInt(x) & 0xffffffffn)) : [],
      xmax,
    ],
  );
  const r = rows[0]!;
  return r.u === '0' && Number(r.n) === parent.rowCount && Number(r.age) < 2 ** 31 && Number(r.age) >= 0;
}
