/**
 * Materialized views' contents: pg_dump's schema sections create every one WITH NO DATA, so a
 * backup records which the source had populated (dependencies first) and a restore refreshes those.
 */
import pg from 'pg';

/**
 * The source's populated materialized views, qualified, each after every materialized view it
 * reads (directly or through plain views), so refreshing them in this order succeeds.
 */
export async function readPopulatedViews(client: pg.ClientBase): Promise<string[]> {
  const views = await client.query<{ oid: number; schema: string; name: string }>(
    `SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'm' AND c.relispopulated
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
      ORDER BY n.nspname, c.relname`,
  );
  if (views.rows.length === 0) return [];
  // what each materialized view's query reads, followed through plain views
  const deps = await client.query<{ mv: number; dep: number }>(
    `WITH RECURSIVE reads(mv, rel) AS (
       SELECT r.ev_class, d.refobjid FROM pg_rewrite r
         JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                         AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
        WHERE r.ev_class = ANY($1)
       UNION
       SELECT reads.mv, d.refobjid FROM reads
         JOIN pg_class v ON v.oid = reads.rel AND v.relkind = 'v'
         JOIN pg_rewrite r ON r.ev_class = v.oid
         JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                         AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> v.oid)
     SELECT DISTINCT reads.mv::int AS mv, reads.rel::int AS dep FROM reads
       JOIN pg_class c ON c.oid = reads.rel AND c.relkind = 'm'`,
    [views.rows.map((v) => v.oid)],
  );
  const reads = new Map<number, number[]>();
  for (const d of deps.rows) reads.set(d.mv, [...(reads.get(d.mv) ?? []), d.dep]);
  const byOid = new Map(views.rows.map((v) => [v.oid, v]));
  const order: string[] = [];
  const placed = new Set<number>();
  const place = (oid: number) => {
    const v = byOid.get(oid);
    if (!v || placed.has(oid)) return; // an unpopulated dependency stays as the source had it
    placed.add(oid); // before its dependencies: a view cannot read itself, this only guards the walk
    for (const d of reads.get(oid) ?? []) place(d);
    order.push(`${pg.escapeIdentifier(v.schema)}.${pg.escapeIdentifier(v.name)}`);
  };
  for (const v of views.rows) place(v.oid);
  return order;
}

/** REFRESH statements for the views a backup found populated, in its order. */
export function refreshStatements(views: readonly string[] | undefined): string {
  return (views ?? []).map((v) => `REFRESH MATERIALIZED VIEW ${v};\n`).join('');
}
