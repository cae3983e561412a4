/** Backup processor: run the engine into the primary target, record the point, then chain replicate → verify. */
import type { Job } from 'bullmq';
import {
  completeOperation,
  createOperation,
  failOperation,
  reportProgress,
  startOperation,
  getOperation,
  touchOperation,
} from '../catalog/operations.js';
import { recordBackupOutput } from '../catalog/record-backup.js';
import { recordTargetFailure, recordTargetSuccess } from '../catalog/targets.js';
import type { AppContext } from '../context.js';
import { runBackup } from '../engine/backup.js';
import { WedvaultError, errorMessage } from '../errors.js';
import { drillOnSchemaChange, enqueueFollowUps } from '../producers/follow-ups.js';
import { stableUuid } from '../queues/names.js';
import { backupPayload, type BackupPayload } from '../queues/payloads.js';
import type { Logger } from '../log.js';
import { PRIORITY } from '../queues/priority.js';
import { heartbeatEvery, progressReporter, startHeartbeat } from './heartbeat.js';

export async function processBackup(job: Job, ctx: AppContext): Promise<{ recoveryPointId: string }> {
  const parsed = backupPayload.parse(job.data);
  const p = { ...parsed, operationId: parsed.operationId ?? operationIdForJob(String(job.id)) };
  // Scheduled jobs have no row yet; the API commits its row only after the add, so this job may
  // start first (this insert then waits for that commit) or outlive a rolled-back request.
  await createOperation(ctx.db, {
    id: p.operationId,
    type: p.type,
    priority: job.opts.priority ?? PRIORITY.later,
    weddingId: p.weddingId,
    components: p.components,
    requestedBy: p.requestedBy ?? `schedule:${p.scheduleId ?? 'unknown'}`,
  });
  const log = ctx.log.child({ operationId: p.operationId, jobId: job.id, queue: job.queueName });
  const op = await startOperation(ctx.db, p.operationId, String(job.id));
  if (!op) {
    const done = await getOperation(ctx.db, p.operationId);
    if (done?.recoveryPointId) return { recoveryPointId: done.recoveryPointId };
    throw new WedvaultError(`operation ${p.operationId} is not in the catalog`);
  }
  log.info({ type: p.type, attempt: op.attempts }, 'backup started');

  const stopBeat = startHeartbeat(
    () => touchOperation(ctx.db, p.operationId),
    heartbeatEvery(ctx.config.jobLockMs),
    log,
  );
  try {
    return await backUp(ctx, { ...p, priority: op.priority }, progressReporter(job, log), log);
  } finally {
    stopBeat();
  }
}

type Run = BackupPayload & { operationId: string; priority: number };

async function backUp(
  ctx: AppContext,
  p: Run,
  progress: (value: number) => void,
  log: Logger,
): Promise<{ recoveryPointId: string }> {
  const primary = ctx.config.primaryTarget;
  const started = Date.now();
  let out;
  try {
    out = await runBackup({
      storage: ctx.storage(primary),
      masterKey: ctx.config.masterKey,
      type: p.type,
      components: p.components,
      weddingId: p.weddingId,
      operationId: p.operationId,
      sources: ctx.config.sources,
      classes: ctx.config.retention.classes,
      storageFor: (name) => ctx.storage(name),
      onLockBreak: (lock, reason) =>
        log.warn(
          { target: primary, lock: { id: lock.id, host: lock.host, pid: lock.pid }, reason },
          'broke a dead holder’s repository lock; the backup proceeds',
        ),
      onProgress: (fraction, bytes) => {
        progress(Math.round(fraction * 100));
        reportProgress(ctx.db, p.operationId, fraction, bytes).catch(() => undefined);
      },
    });
  } catch (err) {
    await recordTargetFailure(ctx.db, primary, errorMessage(err)).catch(() => undefined);
    throw err;
  }
  await recordTargetSuccess(ctx.db, primary, Date.now() - started);
  for (const change of out.tenancyChanges) {
    log.warn({ tenancy: change }, 'table changed tenancy class since the parent snapshot');
  }
  for (const skipped of out.erased) log.info({ erased: skipped }, 'left out rows of an erased scope');

  const point = await recordBackupOutput(ctx.db, out, {
    operationId: p.operationId,
    type: p.type,
    weddingId: p.weddingId ?? null,
    primaryTarget: primary,
  });
  const followUps = await enqueueFollowUps(ctx, point.id, p.priority, p.operationId);
  const drill = await drillOnSchemaChange(ctx, point.id, out.summary.schemaDigest);
  if (drill) followUps.push(drill);
  await completeOperation(ctx.db, p.operationId, {
    recoveryPointId: point.id,
    bytes: out.stats.bytesRead,
    followUps,
  });
  log.info({ recoveryPointId: point.id, ...out.stats }, 'backup completed');
  return { recoveryPointId: point.id };
}

/** Scheduled jobs carry no operation id; the same job always maps to the same operation. */
export function operationIdForJob(jobId: string): string {
  return stableUuid(`wedvault-operation:${jobId}`);
}

export async function onBackupFailed(ctx: AppContext, job: Job, err: Error, final: boolean): Promise<void> {
  const p = backupPayload.safeParse(job.data);
  if (!p.success) return;
  const operationId = p.data.operationId ?? operationIdForJob(String(job.id));
  const cause = err.cause instanceof WedvaultError ? err.cause : err;
  const code = cause instanceof WedvaultError ? cause.code : 'internal';
  await failOperation(ctx.db, operationId, { code, message: cause.message }, final);
}
