/** Jobs the reconciler adds again, with the ids they had, when Redis lost them while the catalog still waits. */
import type { Job } from 'bullmq';
import type { AppContext } from '../context.js';
import { JOBS, QUEUES, jobIds } from '../queues/names.js';
import type { BackupPayload, ReplicatePayload } from '../queues/payloads.js';

/** A backup operation's job, rebuilt from its catalog row under the same job id. */
export async function requeueBackup(
  ctx: AppContext,
  payload: BackupPayload & { operationId: string },
  priority: number,
): Promise<string> {
  const jobId = jobIds.backup(payload.operationId);
  await ctx.queues.queues[QUEUES.backup].add(JOBS.backup, payload, { jobId, priority });
  return jobId;
}

export interface LostReplicate {
  recoveryPointId: string;
  operationId?: string | undefined;
  target: string;
  priority: number;
  /** The verify job still waiting for this child: the re-added job completes it. */
  parent?: Job | undefined;
}

export async function requeueReplicate(ctx: AppContext, r: LostReplicate): Promise<void> {
  const data: ReplicatePayload = {
    recoveryPointId: r.recoveryPointId,
    operationId: r.operationId,
    source: ctx.config.primaryTarget,
    target: r.target,
  };
  // the same id: a parent still waiting for this child counts it done when it completes
  await ctx.queues.queues[QUEUES.replicate].add(JOBS.replicate, data, {
    ...ctx.queues.jobOptions,
    jobId: jobIds.replicate(r.recoveryPointId, r.target),
    priority: r.priority,
    ...(r.parent ? { parent: { id: r.parent.id!, queue: r.parent.queueQualifiedName } } : {}),
  });
}
