/** Verify processor: check a recovery point on every target that should hold it; record the result per replica. */
import { randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import { finishTest, startTest } from '../catalog/backup-tests.js';
import {
  getRecoveryPoint,
  listRecoveryPoints,
  listReplicas,
  markPointHealth,
  upsertReplica,
} from '../catalog/recovery-points.js';
import { recordTargetFailure } from '../catalog/targets.js';
import type { AppContext } from '../context.js';
import { quickVerify, type Problem } from '../engine/verify.js';
import { NotFoundError, errorMessage } from '../errors.js';
import { runDrill } from '../engine/drill.js';
import { fullVerify } from '../engine/verify-full.js';
import { Repository } from '../engine/repo/repository.js';
import { verifyPayload } from '../queues/payloads.js';

export async function processVerify(
  job: Job,
  ctx: AppContext,
): Promise<{ status: string; problems: Problem[] }> {
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
  const testId = p.testId ?? randomUUID();
  const replicas = (await listReplicas(ctx.db, [point.id])).filter((r) => r.state !== 'pending');
  const targets = p.targets ?? replicas.map((r) => r.target);
  await startTest(ctx.db, { id: testId, recoveryPointId: point.id, mode: p.mode, targets });
  if (p.mode === 'drill') return drill(ctx, point.id, point.primaryTarget, targets, testId);
  if (p.mode === 'full') {
    const copies = targets.map((target) => ({ target, storage: ctx.storage(target) }));
    const r = await fullVerify(copies, ctx.config.masterKey, point.id, point.objects, { repair: true });
    for (const target of targets) {
      const open = r.problems.filter((x) => x.target === target && !x.repaired);
      await upsertReplica(ctx.db, {
        recoveryPointId: point.id,
        target,
        state: open.length === 0 ? 'verified' : 'failed',
        error: open.length === 0 ? null : `${open.length} problem(s): ${open[0]!.kind} ${open[0]!.object}`,
      });
      if (open.length > 0)
        await recordTargetFailure(ctx.db, target, `full verification of ${point.id} failed`);
    }
    const status = r.problems.some((x) => !x.repaired) ? 'failed' : 'passed';
    await finishTest(ctx.db, testId, status, r.problems, r.repairs);
    await markPointHealth(ctx.db, point.id, status === 'passed');
    log.info(
      { recoveryPointId: point.id, status, problems: r.problems.length, repairs: r.repairs.length },
      'verified in full',
    );
    return { status, problems: r.problems };
  }

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

/** A real restore into scratch space from the first copy that opens, then consistency checks. */
async function drill(
  ctx: AppContext,
  pointId: string,
  primary: string,
  targets: string[],
  testId: string,
): Promise<{ status: string; problems: Problem[] }> {
  const order = [primary, ...targets.filter((t) => t !== primary)];
  let lastError: unknown;
  for (const target of order) {
    let repo: Repository;
    try {
      repo = await Repository.open(ctx.storage(target), ctx.config.masterKey);
    } catch (err) {
      lastError = err;
      continue;
    }
    const r = await runDrill(repo, pointId, { scratchServerUrl: ctx.config.databaseUrl });
    const problems = r.problems.map((x) => ({ target, object: x.object, kind: x.kind, detail: x.detail }));
    await finishTest(ctx.db, testId, r.status, problems, [], r.rtoMs);
    if (r.status === 'failed') await markPointHealth(ctx.db, pointId, false);
    ctx.log.info({ recoveryPointId: pointId, target, status: r.status, rtoMs: r.rtoMs }, 'drill finished');
    return { status: r.status, problems: problems as unknown as Problem[] };
  }
  const problems = [
    { target: order[0]!, object: 'repository', kind: 'unreachable', detail: errorMessage(lastError) },
  ];
  await finishTest(ctx.db, testId, 'failed', problems);
  return { status: 'failed', problems: problems as unknown as Problem[] };
}
