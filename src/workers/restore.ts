/**
 * Restore processor: restore a recovery point from the first healthy copy into a database or
 * directory, or (with a target) recover to a point in time: base point + change segments.
 */
import type { Job } from 'bullmq';
import { finishDrill } from '../catalog/dr.js';
import { finishRecovery, getRecovery, recordRecoveryProgress, startRecovery } from '../catalog/recoveries.js';
import { dropScratchDatabase } from '../engine/postgres/drill-checks.js';
import { isScenario } from '../policy/dr-plans.js';
import { requestDrill } from '../producers/dr.js';
import { getRecoveryPoint, listReplicas, type RecoveryPoint } from '../catalog/recovery-points.js';
import type { AppContext } from '../context.js';
import { restoreFromCopies, type FailoverResult } from '../engine/failover.js';
import { recoverToTarget, type RecoverResult } from '../engine/pitr/recover.js';
import { upcomingWeddings } from '../engine/pitr/status.js';
import { NotFoundError, ValidationError, WedvaultError, errorMessage } from '../errors.js';
import { drillPayload, restorePayload, type RestorePayload } from '../queues/payloads.js';
import { probeTarget } from './freshness.js';
import { expiredPointClasses } from '../policy/class-expiry.js';
import { PITR_SOURCE } from '../engine/pitr/types.js';

type Copies = { target: string; storage: ReturnType<AppContext['storage']> }[];

/**
 * Verified copies first, then any other that holds the point (one on a target that lost its data
 * last: what it still holds may be sound); the primary breaks ties. Without a point (the engine
 * chooses the base): every target, the primary first.
 */
export async function copiesFor(ctx: AppContext, point: RecoveryPoint | undefined): Promise<Copies> {
  if (!point) {
    const primary = ctx.config.primaryTarget;
    return [...ctx.config.targets]
      .sort((a, b) => Number(b.name === primary) - Number(a.name === primary))
      .map((t) => ({ target: t.name, storage: ctx.storage(t.name) }));
  }
  const rank = { verified: 0, replicated: 1, unverified: 2 } as Record<string, number>;
  return (await listReplicas(ctx.db, [point.id]))
    .filter((r) => r.state in rank)
    .sort(
      (a, b) =>
        rank[a.state]! - rank[b.state]! ||
        Number(b.target === point.primaryTarget) - Number(a.target === point.primaryTarget),
    )
    .map((r) => ({ target: r.target, storage: ctx.storage(r.target) }));
}

export async function processRestore(
  job: Job,
  ctx: AppContext,
): Promise<FailoverResult | RecoverResult | { drillId: string }> {
  // a scheduled drill: its plan becomes a recovery job of its own
  const scheduled = drillPayload.safeParse(job.data);
  if (scheduled.success && !('recoveryId' in job.data)) {
    if (!isScenario(scheduled.data.drill)) throw new ValidationError(`no scenario ${scheduled.data.drill}`);
    return requestDrill(ctx, scheduled.data.drill, 'schedule');
  }
  const p = restorePayload.parse(job.data);
  const log = ctx.log.child({ jobId: job.id, queue: job.queueName, recoveryId: p.recoveryId });
  const point = p.recoveryPointId ? await getRecoveryPoint(ctx.db, p.recoveryPointId) : undefined;
  if (p.recoveryPointId && !point) {
    const err = new NotFoundError(`recovery point ${p.recoveryPointId} not found`);
    await fail(ctx, p.recoveryId, err);
    throw err;
  }
  await startRecovery(ctx.db, p.recoveryId, point?.id ?? null);
  const all = await copiesFor(ctx, point);
  const copies = p.targets ? all.filter((c) => p.targets!.includes(c.target)) : all;
  const what = point ? `restore of ${point.id}` : `point-in-time recovery ${p.recoveryId}`;
  try {
    const result = p.target ? await recover(ctx, p, point, copies) : await restore(ctx, p, point!, copies);
    for (const f of result.failures ?? []) await probeTarget(ctx, f.target, `${what} from it`);
    log.info({ durationMs: result.durationMs }, p.target ? 'recovered to target' : 'restored');
    if (p.drillId) await endDrill(ctx, p, point, result);
    return result;
  } catch (err) {
    for (const c of copies) await probeTarget(ctx, c.target, `${what} from it`);
    await fail(ctx, p.recoveryId, err);
    if (p.drillId) await endDrill(ctx, p, point, undefined, err);
    throw err;
  }
}

/** A drill's measured RTO (the recovery's own duration) and RPO, then its scratch database dropped. */
async function endDrill(
  ctx: AppContext,
  p: RestorePayload,
  point: RecoveryPoint | undefined,
  result?: FailoverResult | RecoverResult,
  err?: unknown,
): Promise<void> {
  const rec = await getRecovery(ctx.db, p.recoveryId);
  const base = rec?.basePoint?.time ?? point?.consistentTime?.toISOString() ?? point?.createdAt.toISOString();
  const rpoS =
    result && 'achievedRpoS' in result
      ? result.achievedRpoS
      : base && rec?.createdAt
        ? (rec.createdAt.getTime() - Date.parse(base)) / 1000
        : undefined;
  await finishDrill(ctx.db, p.drillId!, {
    state: err ? 'failed' : 'completed',
    rtoS: result ? result.durationMs / 1000 : undefined,
    rpoS,
    bytes: point ? point.objects.reduce((s, o) => s + o.size, 0) : undefined,
    result: err ? { error: errorMessage(err), recoveryId: p.recoveryId } : { recoveryId: p.recoveryId },
  });
  if (p.targetDatabase) {
    const db = new URL(p.targetDatabase).pathname.slice(1);
    await dropScratchDatabase(p.targetDatabase, db).catch(() => undefined);
  }
}

async function restore(ctx: AppContext, p: RestorePayload, point: RecoveryPoint, copies: Copies) {
  const result = await restoreFromCopies(copies, ctx.config.masterKey, point.id, {
    targetDatabase: p.targetDatabase,
    targetDir: p.targetDir,
    wedding: p.weddingId,
    expiredClasses: expiredPointClasses(ctx.config.retention.classes ?? []),
  });
  await finishRecovery(ctx.db, p.recoveryId, 'completed', { validation: result });
  return result;
}

async function recover(ctx: AppContext, p: RestorePayload, point: RecoveryPoint | undefined, copies: Copies) {
  if (!p.targetDatabase) throw new ValidationError('a point-in-time recovery needs targetDatabase');
  const expired = expiredPointClasses(ctx.config.retention.classes ?? []);
  const staged = p.staged && p.weddingId === undefined && p.mode === 'new';
  const firstWeddings = staged ? await upcomingWeddings(copies, ctx.config.masterKey, 30) : undefined;
  const stages: { name: string; weddings: number; usableAt: string }[] = [];
  let last = 0;
  const result = await recoverToTarget({
    copies,
    masterKey: ctx.config.masterKey,
    source: PITR_SOURCE,
    basePointId: point?.id,
    target: p.target!,
    wedding: p.weddingId,
    targetDatabase: p.targetDatabase,
    mode: p.mode,
    dryRun: p.dryRun,
    expiredClasses: (t) => expired(new Date(t)),
    ...(firstWeddings?.length && {
      firstWeddings,
      // the first stage is usable before the rest arrives: say so where people look
      onStage: async (s: { name: string; weddings: string[]; usableAt: string }) => {
        stages.push({ name: s.name, weddings: s.weddings.length, usableAt: s.usableAt });
        await recordRecoveryProgress(
          ctx.db,
          p.recoveryId,
          s.name === 'first' ? 0.5 : 0.95,
          `stage ${s.name} usable`,
        );
      },
    }),
    onProgress: (fraction, step) => {
      // at most a row update a second: progress is for people watching
      if (Date.now() - last < 1000 && fraction < 1) return;
      last = Date.now();
      void recordRecoveryProgress(ctx.db, p.recoveryId, fraction, step).catch(() => undefined);
    },
  });
  await finishRecovery(ctx.db, p.recoveryId, 'completed', {
    validation: result.validation,
    result: stages.length ? { ...result, stages } : result,
    basePoint: result.basePoint,
    achievedRpoS: result.achievedRpoS,
  });
  return result;
}

async function fail(ctx: AppContext, id: string, err: unknown): Promise<void> {
  const code = err instanceof WedvaultError ? err.code : 'internal';
  await finishRecovery(ctx.db, id, 'failed', { error: { code, message: errorMessage(err) } });
}
