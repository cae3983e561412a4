/** GET /api/backups: recovery points newest first, each with its replicas and 3-2-1 verdict. */
import { z } from 'zod';
import {
  listRecoveryPoints,
  listReplicas,
  type PointFilter,
  type RecoveryPoint,
  type Replica,
} from '../../catalog/recovery-points.js';
import type { AppContext } from '../../context.js';
import { evaluate321 } from '../../policy/rule321.js';
import { idSchema } from '../../queues/payloads.js';

export const listQuery = z.object({
  weddingId: idSchema.optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  meets321: z.enum(['true', 'false']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});
export type ListQuery = z.infer<typeof listQuery>;

const DEFAULT_LIMIT = 500;

/**
 * The verdict needs the configured targets' labels, so it cannot be a WHERE clause: with a
 * meets321 filter, pages of points are read until `limit` of them match or none are left.
 */
export async function listPoints(ctx: AppContext, q: ListQuery) {
  const limit = q.limit ?? DEFAULT_LIMIT;
  const filter: PointFilter = {
    weddingId: q.weddingId,
    since: q.since ? new Date(q.since) : undefined,
    until: q.until ? new Date(q.until) : undefined,
    limit,
  };
  const labels: Labels = new Map(ctx.config.targets.map((t) => [t.name, t.labels]));
  const items: ReturnType<typeof describe>[] = [];
  for (;;) {
    const points = await listRecoveryPoints(ctx.db, filter);
    const replicas = await listReplicas(
      ctx.db,
      points.map((p) => p.id),
    );
    for (const p of points) {
      const item = describe(
        ctx,
        labels,
        p,
        replicas.filter((x) => x.recoveryPointId === p.id),
      );
      if (q.meets321 && String(item.meets321) !== q.meets321) continue;
      items.push(item);
      if (items.length === limit) return items;
    }
    if (!q.meets321 || points.length < limit) return items;
    filter.after = points.at(-1)!.id;
  }
}

type Labels = Map<string, AppContext['config']['targets'][number]['labels']>;

function describe(ctx: AppContext, labels: Labels, p: RecoveryPoint, mine: Replica[]) {
  const rule = evaluate321(mine, labels, ctx.config.policy.targets);
  const ageMin = (Date.now() - p.createdAt.getTime()) / 60_000;
  return {
    id: p.id,
    type: p.type,
    weddingId: p.weddingId,
    createdAt: p.createdAt,
    consistentTime: p.consistentTime,
    files: p.files,
    bytesRead: p.bytesRead,
    bytesNew: p.bytesNew,
    bytesStored: p.bytesStored,
    checksum: p.checksum,
    healthy: p.healthy,
    replicas: mine.map((x) => ({
      target: x.target,
      state: x.state,
      error: x.error,
      verifiedAt: x.verifiedAt,
    })),
    meets321: rule.meets321,
    reason321: rule.reason321,
    policyOverdue: rule.missing.length > 0 && ageMin > ctx.config.policy.windowMinutes,
  };
}
