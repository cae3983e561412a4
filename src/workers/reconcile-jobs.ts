/**
 * What the reconciler does per kind, for rows nobody has touched for a job lock's time:
 * - backup operation: its job gone → re-enqueued once from its catalog row with the same id
 *   (`backup.<operationId>`), then failed ('job_lost'); its job failed for good → failed with that reason;
 *   its job waiting, delayed or active → left to BullMQ (an active one whose lock expired is re-delivered
 *   by any backup worker's stalled check).
 * - validation test or drill: its job gone, failed, or active with its lock expired → failed with the
 *   reason (a test is cheap to ask again and its result must not silently hang); a drill's scratch
 *   database and directory are dropped once its row is no longer running.
 * - pending replica: its replicate job gone → added again with the same id, under its verify parent when
 *   that still waits for it, else with a new verify parent (the whole flow was lost).
 */
import type { Job, Queue } from 'bullmq';
import { setScratch } from '../catalog/backup-tests.js';
import {
  failQuietOperation,
  failQuietTest,
  leftoverScratch,
  markResumed,
  quietOperations,
  quietReplicas,
  quietTests,
  touchReplica,
} from '../catalog/reconcile.js';
import type { AppContext } from '../context.js';
import { dropDrillScratch } from '../engine/drill.js';
import { errorMessage } from '../errors.js';
import { addFollowUpFlow } from '../producers/follow-ups.js';
import { requeueBackup, requeueReplicate } from '../producers/requeue.js';
import { QUEUES, jobIds } from '../queues/names.js';
import { PRIORITY } from '../queues/priority.js';

export interface ReconcileReport {
  resumed: number;
  failed: number;
  scratchDropped: number;
  replicasRequeued: number;
}

type Found = { job: Job; state: string } | undefined;

async function find(queue: Queue, jobId: string): Promise<Found> {
  const job = await queue.getJob(jobId);
  if (!job) return undefined;
  const state = await job.getState();
  return state === 'unknown' ? undefined : { job, state };
}

/** An active job whose lock key expired: nobody is processing it. */
async function lockExpired(ctx: AppContext, queue: Queue, jobId: string): Promise<boolean> {
  return (await ctx.queues.connection.exists(queue.toKey(`${jobId}:lock`))) === 0;
}

export async function reconcileOperations(
  ctx: AppContext,
  staleMs: number,
  report: ReconcileReport,
): Promise<void> {
  const queue = ctx.queues.queues[QUEUES.backup];
  for (const op of await quietOperations(ctx.db, staleMs)) {
    const log = ctx.log.child({ operationId: op.id, jobId: op.jobId });
    const found = (op.jobId && (await find(queue, op.jobId))) || (await find(queue, jobIds.backup(op.id)));
    if (found?.state === 'failed' || found?.state === 'completed') {
      const message = found.job.failedReason || `job ${found.state} without recording the operation`;
      if (await failQuietOperation(ctx.db, op.id, { code: 'job_failed', message }, staleMs)) {
        report.failed++;
        log.warn({ reason: message }, 'reconciler: operation failed, as its job did');
      }
      continue;
    }
    if (found) continue;
    if (op.resumes >= 1) {
      const message = 'its job vanished from the queue again after being re-enqueued once';
      if (await failQuietOperation(ctx.db, op.id, { code: 'job_lost', message }, staleMs)) {
        report.failed++;
        log.error({ reason: message }, 'reconciler: operation failed');
      }
      continue;
    }
    if (!(await markResumed(ctx.db, op.id, jobIds.backup(op.id), staleMs))) continue;
    const payload = {
      operationId: op.id,
      type: op.type,
      components: op.components,
      weddingId: op.weddingId ?? undefined,
    };
    await requeueBackup(ctx, payload, op.priority);
    report.resumed++;
    log.warn(
      { state: op.state },
      'reconciler: the job of this operation vanished; re-enqueued with the same id',
    );
  }
}

export async function reconcileTests(
  ctx: AppContext,
  staleMs: number,
  report: ReconcileReport,
): Promise<void> {
  const queue = ctx.queues.queues[QUEUES.verify];
  for (const t of await quietTests(ctx.db, staleMs)) {
    const jobId = t.jobId ?? jobIds.validation(t.id);
    const found = await find(queue, jobId);
    let reason: string | undefined;
    if (!found) reason = 'job lost: it vanished from the queue';
    else if (found.state === 'failed') reason = `job failed: ${found.job.failedReason}`;
    else if (found.state === 'active' && t.status === 'running' && (await lockExpired(ctx, queue, jobId)))
      reason = 'worker lost: the job lock expired while it ran';
    if (reason && (await failQuietTest(ctx.db, t.id, reason, staleMs))) {
      report.failed++;
      ctx.log.warn({ testId: t.id, jobId, reason }, 'reconciler: test failed');
    }
  }
  for (const s of await leftoverScratch(ctx.db)) {
    try {
      await dropDrillScratch(ctx.config.databaseUrl, s);
      await setScratch(ctx.db, s.id, null);
      report.scratchDropped++;
      ctx.log.info(
        { testId: s.id, database: s.database, dir: s.dir },
        'reconciler: dead drill scratch dropped',
      );
    } catch (err) {
      ctx.log.warn({ testId: s.id, err: errorMessage(err) }, 'reconciler: could not drop drill scratch');
    }
  }
}

export async function reconcileReplicas(
  ctx: AppContext,
  staleMs: number,
  report: ReconcileReport,
): Promise<void> {
  const replicate = ctx.queues.queues[QUEUES.replicate];
  const verify = ctx.queues.queues[QUEUES.verify];
  const lost = new Map<string, { targets: string[]; operationId: string | null; priority: number }>();
  for (const r of await quietReplicas(ctx.db, staleMs)) {
    if (await find(replicate, jobIds.replicate(r.recoveryPointId, r.target))) continue;
    const point = lost.get(r.recoveryPointId) ?? {
      targets: [],
      operationId: r.operationId,
      priority: r.priority ?? PRIORITY.maintenance,
    };
    point.targets.push(r.target);
    lost.set(r.recoveryPointId, point);
  }
  for (const [recoveryPointId, p] of lost) {
    const parent = await find(verify, jobIds.verify(recoveryPointId, 'quick'));
    if (!parent) {
      await addFollowUpFlow(ctx, { recoveryPointId, ...p, operationId: p.operationId ?? undefined });
    } else {
      for (const target of p.targets) {
        await requeueReplicate(ctx, {
          recoveryPointId,
          operationId: p.operationId ?? undefined,
          target,
          priority: p.priority,
          parent: parent.state === 'waiting-children' ? parent.job : undefined,
        });
      }
    }
    for (const target of p.targets) await touchReplica(ctx.db, recoveryPointId, target);
    report.replicasRequeued += p.targets.length;
    ctx.log.warn({ recoveryPointId, targets: p.targets }, 'reconciler: replicate jobs vanished; re-enqueued');
  }
}
