/** After a backup: one replicate job per other target, under a verify job that runs when they are done. */
import type { FlowJob } from 'bullmq';
import { previousSchemaDigest, upsertReplica } from '../catalog/recovery-points.js';
import type { AppContext } from '../context.js';
import { JOBS, QUEUES, jobIds } from '../queues/names.js';
import type { ReplicatePayload, VerifyPayload } from '../queues/payloads.js';
import { PRIORITY } from '../queues/priority.js';

export interface FollowUp {
  queue: string;
  jobId: string;
  target?: string;
}

export async function enqueueFollowUps(
  ctx: AppContext,
  recoveryPointId: string,
  priority: number,
  operationId?: string,
): Promise<FollowUp[]> {
  const source = ctx.config.primaryTarget;
  const others = ctx.config.targets.map((t) => t.name).filter((n) => n !== source);
  for (const target of others) {
    await upsertReplica(ctx.db, { recoveryPointId, target, state: 'pending' });
  }
  await addFollowUpFlow(ctx, { recoveryPointId, priority, operationId, targets: others });
  return [
    ...others.map((target) => ({
      queue: QUEUES.replicate,
      jobId: jobIds.replicate(recoveryPointId, target),
      target,
    })),
    { queue: QUEUES.verify, jobId: jobIds.verify(recoveryPointId, 'quick') },
  ];
}

export interface FollowUpFlow {
  recoveryPointId: string;
  priority: number;
  operationId?: string | undefined;
  /** The targets to copy to; the job ids are the same for the same point and target. */
  targets: string[];
}

/** The replicate jobs and their verify parent; the reconciler adds it again when Redis lost it. */
export async function addFollowUpFlow(
  ctx: AppContext,
  { recoveryPointId, priority, operationId, targets: others }: FollowUpFlow,
): Promise<void> {
  const source = ctx.config.primaryTarget;
  const children: FlowJob[] = others.map((target) => {
    const data: ReplicatePayload = { recoveryPointId, operationId, source, target };
    return {
      name: JOBS.replicate,
      queueName: QUEUES.replicate,
      data,
      // A failed copy must not stall verification: verify reports the missing replica instead.
      opts: {
        ...ctx.queues.jobOptions,
        jobId: jobIds.replicate(recoveryPointId, target),
        priority,
        ignoreDependencyOnFailure: true,
      },
    };
  });
  const verify: VerifyPayload = { recoveryPointId, operationId, mode: 'quick' };
  await ctx.queues.flow.add({
    name: JOBS.verify,
    queueName: QUEUES.verify,
    data: verify,
    opts: { ...ctx.queues.jobOptions, jobId: jobIds.verify(recoveryPointId, 'quick'), priority },
    children,
  });
}

/** A schema change is when restores break: prove a point with a new schema digest restores, with a drill. */
export async function drillOnSchemaChange(
  ctx: AppContext,
  pointId: string,
  digest: unknown,
): Promise<FollowUp | undefined> {
  if (typeof digest !== 'string') return undefined;
  if ((await previousSchemaDigest(ctx.db, pointId)) === digest) return undefined;
  const jobId = jobIds.verify(pointId, 'drill');
  const data: VerifyPayload = { recoveryPointId: pointId, mode: 'drill' };
  await ctx.queues.queues[QUEUES.verify].add(JOBS.verify, data, { jobId, priority: PRIORITY.maintenance });
  return { queue: QUEUES.verify, jobId };
}
