/**
 * Sequences after a point-in-time replay: logical decoding carries no sequence values, so each is
 * raised to the position the change segments recorded and to its owning column's largest value.
 */
import pg from 'pg';

/**
 * Sequences after a replay (logical decoding carries none): each set to at least the position
 * the stream recorded (by any name `::regclass` reads), and to at least the largest value in the
 * column that owns it. The number of sequences moved.
 */
export async function settleSequences(url: string, recorded: Record<string, string>): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const raise = async (seq: string, value: string) => {
    const { rows } = await c.query<{ moved: boolean }>(
      `SELECT pg_catalog.setval(s.oid, $2::bigint, true) IS NOT NULL AS moved
         FROM (SELECT to_regclass($1) AS oid) s, pg_sequences p
        WHERE s.oid IS NOT NULL AND format('%I.%I', p.schemaname, p.sequencename)::regclass = s.oid
          AND (p.last_value IS NULL OR p.last_value < $2::bigint)`,
      [seq, value],
    );
    return rows.length > 0;
  };
  try {
    let moved = 0;
    for (const [seq, value] of Object.entries(recorded)) if (await raise(seq, value)) moved++;
    const { rows } = await c.query<{ seq: string; tbl: string; col: string }>(
      `SELECT d.objid::regclass::text AS seq, d.refobjid::regclass::text AS tbl, quote_ident(a.attname) AS col
         FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
         JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')`,
    );
    for (const r of rows) {
      const max = (await c.query<{ m: string | null }>(`SELECT max(${r.col})::text AS m FROM ${r.tbl}`))
        .rows[0]!.m;
      if (max !== null && /^-?\d+$/.test(max) && (await raise(r.seq, max))) moved++;
    }
    return moved;
  } finally {
    await c.end().catch(() => undefined);
  }
}
