/** Replicate processor: copy what the target lacks for one recovery point, reading from the first healthy copy. */
import type { Job } from 'bullmq';
import { getRecoveryPoint, listReplicas, upsertReplica } from '../catalog/recovery-points.js';
import { recordTargetFailure, recordTargetSuccess } from '../catalog/targets.js';
import type { AppContext } from '../context.js';
import { removeSnapshot } from '../engine/forget.js';
import { changeObjects, ledgerOf, replicateObjects, type ReplicateResult } from '../engine/replicate.js';
import { NotFoundError, errorMessage } from '../errors.js';
import { replicatePayload } from '../queues/payloads.js';
import { probeTarget } from './freshness.js';
import { progressReporter } from './heartbeat.js';

export async function processReplicate(job: Job, ctx: AppContext): Promise<ReplicateResult> {
  const p = replicatePayload.parse(job.data);
  const log = ctx.log.child({
    jobId: job.id,
    queue: job.queueName,
    target: p.target,
    operationId: p.operationId,
  });
  const point = await getRecoveryPoint(ctx.db, p.recoveryPointId);
  if (!point) throw new NotFoundError(`recovery point ${p.recoveryPointId} not found`);
  const targetConfig = ctx.config.targets.find((t) => t.name === p.target);
  if (!targetConfig) throw new NotFoundError(`target ${p.target} is not configured`);

  // Read from the named source first, then from any other copy already made.
  const replicas = await listReplicas(ctx.db, [point.id]);
  const sources = [
    p.source,
    ...replicas
      .filter(
        (r) => r.target !== p.source && r.target !== p.target && ['replicated', 'verified'].includes(r.state),
      )
      .map((r) => r.target),
  ];
  const dest = ctx.storage(p.target);
  const started = Date.now();
  const progress = progressReporter(job, log);
  let lastError: unknown;
  for (const source of sources) {
    try {
      const from = ctx.storage(source);
      const ledger = await ledgerOf(ctx.config.masterKey, from, dest);
      // change segments ride along: a copy that missed some while it was down catches up here
      const all = [...point.objects, ...ledger.objects, ...(await changeObjects(from))];
      const objects = [...new Map(all.map((o) => [o.key, o])).values()];
      const result = await replicateObjects(from, dest, objects, {
        keyObject: ledger.keyObject,
        concurrency: targetConfig.concurrency,
        onProgress: ({ bytes }) => progress({ bytes }),
      });
      await upsertReplica(ctx.db, {
        recoveryPointId: point.id,
        target: p.target,
        state: 'replicated',
        objects: result.objects,
        bytes: result.bytes,
        copiedObjects: result.copiedObjects,
        copiedBytes: result.copiedBytes,
        checksum: point.checksum,
      });
      await recordTargetSuccess(ctx.db, p.target, Date.now() - started);
      // forgotten while it was being copied: the forget may have swept this target before the copy landed
      if (!(await getRecoveryPoint(ctx.db, point.id))) {
        await removeSnapshot([{ target: p.target, storage: dest }], point.id);
        log.info({ source }, 'point forgotten during replication; its snapshot removed from the target');
        return result;
      }
      log.info({ source, ...result }, 'replicated');
      return result;
    } catch (err) {
      lastError = err;
      log.warn({ source, err: errorMessage(err) }, 'replication from this source failed');
      await probeTarget(ctx, source, `replication of ${point.id} from it`);
    }
  }
  await probeTarget(ctx, p.target, `replication of ${point.id} to it`);
  await upsertReplica(ctx.db, {
    recoveryPointId: point.id,
    target: p.target,
    state: 'failed',
    error: errorMessage(lastError),
  });
  await recordTargetFailure(ctx.db, p.target, errorMessage(lastError));
  throw lastError;
}
