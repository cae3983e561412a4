/** /api/targets: each target's labels, health and space, and how many points meet 3-2-1. */
import { Router } from 'express';
import { listRecoveryPoints, listReplicas } from '../../catalog/recovery-points.js';
import { listTargetHealth } from '../../catalog/targets.js';
import type { AppContext } from '../../context.js';
import { evaluate321 } from '../../policy/rule321.js';
import { requireScope } from '../auth.js';
import { methodNotAllowed } from '../errors.js';
import { loadStatus } from '../load-status.js';

export function targetsRouter(ctx: AppContext): Router {
  const r = Router();
  r.get('/', requireScope('targets:read'), async (_req, res) => {
    const health = new Map((await listTargetHealth(ctx.db)).map((h) => [h.name, h]));
    const points = await listRecoveryPoints(ctx.db, { limit: 200 });
    const replicas = await listReplicas(
      ctx.db,
      points.map((p) => p.id),
    );
    const labels = new Map(ctx.config.targets.map((t) => [t.name, t.labels]));
    const meeting = points.filter(
      (p) =>
        evaluate321(
          replicas.filter((x) => x.recoveryPointId === p.id),
          labels,
          ctx.config.policy.targets,
        ).meets321,
    ).length;
    const targets = await Promise.all(
      ctx.config.targets.map(async (t) => {
        const h = health.get(t.name);
        const usage = await ctx
          .storage(t.name)
          .usage?.()
          .catch(() => undefined);
        return {
          name: t.name,
          type: t.type,
          labels: t.labels,
          primary: t.name === ctx.config.primaryTarget,
          healthy: h?.healthy ?? true,
          lastOkAt: h?.lastOkAt ?? null,
          lastErrorAt: h?.lastErrorAt ?? null,
          lastError: h?.lastError ?? null,
          latencyMs: h?.latencyMs ?? null,
          errorCount: h?.errorCount ?? 0,
          usedBytes: usage?.usedBytes ?? null,
          freeBytes: usage?.freeBytes ?? null,
          // shared by every worker process (src/storage/shared-limit.ts); 0: no limit
          limits: {
            concurrency: t.concurrency,
            requestsPerSecond: t.rateLimit,
            mbPerSecond: t.mbPerSecond ?? 0,
          },
        };
      }),
    );
    res.json({ targets, rule321: { recoveryPoints: points.length, meeting }, load: await loadStatus(ctx) });
  });
  methodNotAllowed(r);
  return r;
}
