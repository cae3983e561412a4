/** What the cadence planner and the SLA monitor read from the catalog: each wedding's newest point per component. */
import type { Db } from './db.js';

export interface NewestPoint {
  /** null: a point of the whole source (no wedding), which covers every wedding. */
  weddingId: string | null;
  component: 'database' | 'files';
  newest: Date;
  /** Newest point with at least one verified copy. */
  newestVerified: Date | null;
}

/**
 * Newest point per wedding and component (a files point: files; a database point: its operation's
 * components, both when it recorded none). The point's consistent time counts, else its creation.
 */
export async function newestPoints(db: Db, weddingIds?: readonly string[]): Promise<NewestPoint[]> {
  const { rows } = await db.query<{
    wedding_id: string | null;
    component: 'database' | 'files';
    newest: Date;
    newest_verified: Date | null;
  }>(
    `SELECT rp.wedding_id, c.component,
            max(coalesce(rp.consistent_time, rp.created_at)) AS newest,
            max(coalesce(rp.consistent_time, rp.created_at)) FILTER (WHERE EXISTS (
              SELECT 1 FROM replicas r WHERE r.recovery_point_id = rp.id AND r.state = 'verified')) AS newest_verified
       FROM recovery_points rp
       LEFT JOIN backup_operations o ON o.id = rp.operation_id
      CROSS JOIN LATERAL jsonb_array_elements_text(CASE
              WHEN rp.type = 'files' THEN '["files"]'::jsonb
              WHEN o.components IS NULL OR o.components = '[]'::jsonb THEN '["database","files"]'::jsonb
              ELSE o.components END) AS c(component)
      WHERE rp.deleted_at IS NULL ${weddingIds ? 'AND (rp.wedding_id IS NULL OR rp.wedding_id = ANY($1))' : ''}
      GROUP BY rp.wedding_id, c.component`,
    weddingIds ? [weddingIds] : [],
  );
  return rows.map((r) => ({
    weddingId: r.wedding_id,
    component: r.component,
    newest: r.newest,
    newestVerified: r.newest_verified,
  }));
}

export type NewestIndex = (weddingId: string, component: 'database' | 'files') => NewestPoint | undefined;

/** Looks up a wedding's newest points, counting the whole-source points as the wedding's too. */
export function indexNewest(points: NewestPoint[]): NewestIndex {
  const by = new Map(points.map((p) => [`${p.weddingId ?? ''}\n${p.component}`, p]));
  const later = (a: Date | null | undefined, b: Date | null | undefined) =>
    !a ? (b ?? null) : !b ? a : a > b ? a : b;
  return (weddingId, component) => {
    const own = by.get(`${weddingId}\n${component}`);
    const all = by.get(`\n${component}`);
    if (!own && !all) return undefined;
    return {
      weddingId,
      component,
      newest: later(own?.newest, all?.newest)!,
      newestVerified: later(own?.newestVerified, all?.newestVerified),
    };
  };
}
