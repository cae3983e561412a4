/** Verify processor: check a recovery point on every target that should hold it; record the result per replica. */
import { randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import { finishTest, startTest } from '../catalog/backup-tests.js';
import {
  getRecoveryPoint,
  listReplicas,
  markPointHealth,
  upsertReplica,
} from '../catalog/recovery-points.js';
import { recordTargetFailure } from '../catalog/targets.js';
import type { AppContext } from '../context.js';
import { quickVerify, type Problem } from '../engine/verify.js';
import { NotFoundError } from '../errors.js';
import { verifyPayload } from '../queues/payloads.js';

export async function processVerify(
  job: Job,
  ctx: AppContext,
): Promise<{ status: string; problems: Problem[] }> {
  const p = verifyPayload.parse(job.data);
  const log = ctx.log.child({ jobId: job.id, queue: job.queueName, operationId: p.operationId });
  const point = await getRecoveryPoint(ctx.db, p.recoveryPointId);
  if (!point) throw new NotFoundError(`recovery point ${p.recoveryPointId} not found`);
  const testId = p.testId ?? randomUUID();
  const replicas = (await listReplicas(ctx.db, [point.id])).filter((r) => r.state !== 'pending');
  const targets = p.targets ?? replicas.map((r) => r.target);
  await startTest(ctx.db, { id: testId, recoveryPointId: point.id, mode: p.mode, targets });

  const problems: Problem[] = [];
  for (const target of targets) {
    const found = await quickVerify(ctx.storage(target), ctx.config.masterKey, point.id, point.objects);
    const mine = found.map((f) => ({ ...f, target }));
    problems.push(...mine);
    await upsertReplica(ctx.db, {
      recoveryPointId: point.id,
      target,
      state: mine.length === 0 ? 'verified' : 'failed',
      error:
        mine.length === 0
          ? null
          : `${mine.length} problem(s): ${mine[0]!.kind} ${mine[0]!.object}${mine[0]!.detail ? ` (${mine[0]!.detail})` : ''}`,
    });
    if (mine.length > 0) await recordTargetFailure(ctx.db, target, `verification of ${point.id} failed`);
  }
  const status = problems.length === 0 ? 'passed' : 'failed';
  await finishTest(ctx.db, testId, status, problems);
  if (problems.length > 0) await markPointHealth(ctx.db, point.id, false);
  log.info({ recoveryPointId: point.id, status, problems: problems.length }, 'verified');
  return { status, problems };
}
