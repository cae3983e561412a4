/**
 * Materialized views' contents: pg_dump's schema sections create every one WITH NO DATA, so a
 * backup records which the source had populated (dependencies first) and a restore refreshes those.
 */
import pg from 'pg';

/** A materialized view to refresh after a restore's load, and whether the source had it populated. */
export interface MaterializedView {
  /** Qualified and quoted as SQL names it. */
  name: string;
  /** false for a view refreshed only because a populated one reads it: emptied again afterwards. */
  populated: boolean;
}

/**
 * The source's populated materialized views, each after every materialized view it reads
 * (directly or through plain views), so refreshing them in this order succeeds. An unpopulated
 * view that a populated one reads is listed too, to be refreshed first and emptied after.
 */
export async function readMaterializedViews(client: pg.ClientBase): Promise<MaterializedView[]> {
  const views = await client.query<{ oid: number; schema: string; name: string; populated: boolean }>(
    `SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name, c.relispopulated AS populated
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'm'
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
      ORDER BY n.nspname, c.relname`,
  );
  if (!views.rows.some((v) => v.populated)) return [];
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
  const order: MaterializedView[] = [];
  const placed = new Set<number>();
  const place = (oid: number) => {
    const v = byOid.get(oid);
    if (!v || placed.has(oid)) return;
    placed.add(oid); // before its dependencies: a view cannot read itself, this only guards the walk
    for (const d of reads.get(oid) ?? []) place(d);
    order.push({
      name: `${pg.escapeIdentifier(v.schema)}.${pg.escapeIdentifier(v.name)}`,
      populated: v.populated,
    });
  };
  for (const v of views.rows) if (v.populated) place(v.oid);
  return order;
}

/** The statements that leave the views as the backup found them: refreshed in order, then the helpers emptied. */
export function refreshStatements(views: readonly MaterializedView[] | undefined): string {
  const all = views ?? [];
  return [
    ...all.map((v) => `REFRESH MATERIALIZED VIEW ${v.name};\n`),
    ...all.filter((v) => !v.populated).map((v) => `REFRESH MATERIALIZED VIEW ${v.name} WITH NO DATA;\n`),
  ].join('');
}
