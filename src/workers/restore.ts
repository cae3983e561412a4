/** Restore processor: restore a recovery point from the first healthy copy into a database or directory. */
import type { Job } from 'bullmq';
import { finishRecovery, startRecovery } from '../catalog/recoveries.js';
import { getRecoveryPoint, listReplicas } from '../catalog/recovery-points.js';
import type { AppContext } from '../context.js';
import { restoreFromCopies, type FailoverResult } from '../engine/failover.js';
import { NotFoundError, WedvaultError, errorMessage } from '../errors.js';
import { restorePayload } from '../queues/payloads.js';
import { probeTarget } from './freshness.js';
import { expiredPointClasses } from '../policy/class-expiry.js';

export async function processRestore(job: Job, ctx: AppContext): Promise<FailoverResult> {
  const p = restorePayload.parse(job.data);
  const log = ctx.log.child({ jobId: job.id, queue: job.queueName, recoveryId: p.recoveryId });
  const point = await getRecoveryPoint(ctx.db, p.recoveryPointId);
  if (!point) throw new NotFoundError(`recovery point ${p.recoveryPointId} not found`);
  await startRecovery(ctx.db, p.recoveryId, point.id);
  // verified copies first, then any other that holds the point (one on a target that lost its data
  // last: what it still holds may be sound); the primary breaks ties
  const rank = { verified: 0, replicated: 1, unverified: 2 } as Record<string, number>;
  const copies = (await listReplicas(ctx.db, [point.id]))
    .filter((r) => r.state in rank)
    .sort(
      (a, b) =>
        rank[a.state]! - rank[b.state]! ||
        Number(b.target === point.primaryTarget) - Number(a.target === point.primaryTarget),
    )
    .map((r) => ({ target: r.target, storage: ctx.storage(r.target) }));
  try {
    const result = await restoreFromCopies(copies, ctx.config.masterKey, point.id, {
      targetDatabase: p.targetDatabase,
      targetDir: p.targetDir,
      wedding: p.weddingId,
      expiredClasses: expiredPointClasses(ctx.config.retention.classes ?? []),
    });
    for (const f of result.failures) await probeTarget(ctx, f.target, `restore of ${point.id} from it`);
    await finishRecovery(ctx.db, p.recoveryId, 'completed', { validation: result });
    log.info({ from: result.target, durationMs: result.durationMs }, 'restored');
    return result;
  } catch (err) {
    const code = err instanceof WedvaultError ? err.code : 'internal';
    for (const c of copies) await probeTarget(ctx, c.target, `restore of ${point.id} from it`);
    await finishRecovery(ctx.db, p.recoveryId, 'failed', { error: { code, message: errorMessage(err) } });
    throw err;
  }
}
