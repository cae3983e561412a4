/** Verify processor: check a recovery point on every target that should hold it; record the result per replica. */
import type { Job } from 'bullmq';
import { finishTest, setScratch, startTest, touchTest } from '../catalog/backup-tests.js';
import {
  type RecoveryPoint,
  getRecoveryPoint,
  listRecoveryPoints,
  listReplicas,
  markPointHealth,
  upsertReplica,
} from '../catalog/recovery-points.js';
import { recordTargetFailure } from '../catalog/targets.js';
import type { AppContext } from '../context.js';
import { expiredPointClasses } from '../policy/class-expiry.js';
import { NotFoundError, errorMessage } from '../errors.js';
import { drillScratchFor, runDrill } from '../engine/drill.js';
import { validatePoint } from '../engine/validate/validate.js';
import { Repository } from '../engine/repo/repository.js';
import { verifyPayload, type VerifyPayload } from '../queues/payloads.js';
import type { Logger } from '../log.js';
import { operationIdForJob } from './backup.js';
import { lostInValidation, markTargetLost, probeTarget } from './freshness.js';
import { heartbeatEvery, startHeartbeat } from './heartbeat.js';

export async function processVerify(
  job: Job,
  ctx: AppContext,
): Promise<{ status: string; problems: unknown[] }> {
  const p = verifyPayload.parse(job.data);
  const log = ctx.log.child({ jobId: job.id, queue: job.queueName, operationId: p.operationId });
  // scheduled runs name no point: they check the newest one
  const point = p.recoveryPointId
    ? await getRecoveryPoint(ctx.db, p.recoveryPointId)
    : (
        await listRecoveryPoints(ctx.db, {
          limit: 1,
          types: p.mode === 'drill' ? ['full', 'incremental'] : undefined,
        })
      )[0];
  if (!point) throw new NotFoundError(`recovery point ${p.recoveryPointId ?? '(newest)'} not found`);
  // a re-delivered job (after a crash) keeps its test row: the id follows the job, not the attempt
  const testId = p.testId ?? operationIdForJob(`test:${job.id}@${job.timestamp}`);
  const replicas = (await listReplicas(ctx.db, [point.id])).filter((r) => r.state !== 'pending');
  const targets = p.targets ?? replicas.map((r) => r.target);
  await startTest(ctx.db, {
    id: testId,
    recoveryPointId: point.id,
    mode: p.mode,
    targets,
    jobId: String(job.id),
  });
  const stopBeat = startHeartbeat(() => touchTest(ctx.db, testId), heartbeatEvery(ctx.config.jobLockMs), log);
  try {
    if (p.mode === 'drill') return await drill(ctx, point.id, point.primaryTarget, targets, testId);
    return await validate(ctx, { ...p, mode: p.mode }, { point, targets, testId, log });
  } finally {
    stopBeat();
  }
}

interface Check {
  point: RecoveryPoint;
  targets: string[];
  testId: string;
  log: Logger;
}

async function validate(
  ctx: AppContext,
  p: VerifyPayload & { mode: 'quick' | 'full' },
  { point, targets, testId, log }: Check,
): Promise<{ status: string; problems: unknown[] }> {
  const copies = targets.map((target) => ({ target, storage: ctx.storage(target) }));
  const r = await validatePoint({
    snapshotId: point.id,
    expected: point.objects,
    copies,
    masterKey: ctx.config.masterKey,
    mode: p.mode,
    sample: p.mode === 'full' ? p.sample : undefined,
    // a full run reads everything anyway: it also mends what a healthy copy can replace
    repair: p.mode === 'full',
  });
  for (const target of targets) {
    // first the target as a whole: this point's own result below re-establishes its replica
    const lost = lostInValidation(target, r.problems, point.objects.length);
    if (lost) await markTargetLost(ctx, target, `${p.mode} verification of ${point.id}: ${lost}`);
    const open = r.problems.filter((x) => x.target === target && !x.repaired);
    const first = open[0];
    await upsertReplica(ctx.db, {
      recoveryPointId: point.id,
      target,
      state: open.length === 0 ? 'verified' : 'failed',
      error: first
        ? `${open.length} problem(s): ${first.kind} ${first.object}${first.detail ? ` (${first.detail})` : ''}`
        : null,
    });
    if (first) await recordTargetFailure(ctx.db, target, `${p.mode} verification of ${point.id} failed`);
  }
  await finishTest(ctx.db, testId, r.status, r.problems, r.repairs);
  await markPointHealth(ctx.db, point.id, r.status === 'passed');
  log.info(
    {
      testId,
      recoveryPointId: point.id,
      mode: p.mode,
      status: r.status,
      problems: r.problems.length,
      repairs: r.repairs.length,
    },
    'verified',
  );
  return { status: r.status, problems: r.problems };
}

/** A real restore into scratch space from the first copy that opens, then consistency checks. */
async function drill(
  ctx: AppContext,
  pointId: string,
  primary: string,
  targets: string[],
  testId: string,
): Promise<{ status: string; problems: unknown[] }> {
  const order = [primary, ...targets.filter((t) => t !== primary)];
  let lastError: unknown;
  for (const target of order) {
    let repo: Repository;
    try {
      repo = await Repository.open(ctx.storage(target), ctx.config.masterKey);
    } catch (err) {
      lastError = err;
      await probeTarget(ctx, target, `drill of ${pointId}`);
      continue;
    }
    // recorded first: if this process dies mid-drill, the reconciler drops them by this row
    const scratch = drillScratchFor(testId);
    await setScratch(ctx.db, testId, scratch);
    const r = await runDrill(repo, pointId, {
      scratchServerUrl: ctx.config.databaseUrl,
      scratch,
      expiredClasses: expiredPointClasses(ctx.config.retention.classes ?? []),
    });
    await setScratch(ctx.db, testId, null);
    const problems = r.problems.map((x) => ({ target, object: x.object, kind: x.kind, detail: x.detail }));
    await finishTest(ctx.db, testId, r.status, problems, [], r.rtoMs);
    if (r.status === 'failed') await markPointHealth(ctx.db, pointId, false);
    ctx.log.info({ recoveryPointId: pointId, target, status: r.status, rtoMs: r.rtoMs }, 'drill finished');
    return { status: r.status, problems };
  }
  const problems = [
    { target: order[0]!, object: 'repository', kind: 'unreachable', detail: errorMessage(lastError) },
  ];
  await finishTest(ctx.db, testId, 'failed', problems);
  return { status: 'failed', problems };
}
