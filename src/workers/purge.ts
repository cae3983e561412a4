/** Purge processor: forget what the retention policy lets go, on every target, and record the run. */
import type { Job } from 'bullmq';
import { finishPurgeRun, startPurgeRun } from '../catalog/forget.js';
import type { AppContext } from '../context.js';
import { errorMessage } from '../errors.js';
import { runClassExpiries, type ClassExpiryRun } from '../producers/class-expiry.js';
import { runForget, type ForgetResult } from '../producers/retention.js';
import { pruneTargets } from '../engine/prune-targets.js';
import { purgePayload } from '../queues/payloads.js';
import { operationIdForJob } from './backup.js';
import { addPruneToCertificates } from './erasure.js';
import { ERASURE_LOCK_WAIT_MS } from '../producers/erasure.js';

/** How long a purge's prune waits on a target for running backups to let go of it. */
const PRUNE_LOCK_WAIT_MS = 5 * 60_000;
/** Packs younger than this are kept: a writer without a lock (a broken one) may still name them. */
const PRUNE_GRACE_MS = 60 * 60_000;

export async function processPurge(
  job: Job,
  ctx: AppContext,
): Promise<Omit<ForgetResult, 'verdicts'> & { kept: number; classesExpired: ClassExpiryRun['expired'] }> {
  const p = purgePayload.parse(job.data);
  const log = ctx.log.child({ jobId: job.id, queue: job.queueName });
  // a re-delivered job keeps its run row: the id follows the job, not the attempt
  const runId = operationIdForJob(`purge:${job.id}@${job.timestamp}`);
  await startPurgeRun(ctx.db, runId, job.id);
  try {
    const result = await runForget(ctx);
    // after the forget: a forgotten point's class data needs no key of its own any more
    const classes = await runClassExpiries(ctx, { waitMs: ERASURE_LOCK_WAIT_MS });
    if (classes.expired.length > 0)
      log.info(
        { expired: classes.expired },
        'purge: data classes expired (their keys destroyed on every target)',
      );
    // then what no kept point needs goes, target by target (erased scopes' blobs too); a target
    // busy with a backup past the wait is left for the next run, never a reason to fail this one
    const pruned = await pruneTargets(ctx.config, {
      dryRun: false,
      waitMs: PRUNE_LOCK_WAIT_MS,
      graceMs: PRUNE_GRACE_MS,
    });
    for (const o of pruned) {
      if (o.error) log.warn({ target: o.target, err: o.error }, 'purge: prune of a target failed');
      else if (o.result) log.info({ target: o.target, prune: o.result }, 'purge: pruned');
    }
    const certified = await addPruneToCertificates(ctx, pruned);
    if (certified > 0) log.info({ erasures: certified }, 'purge: the prune added to erasure certificates');
    const forgotten = result.verdicts
      .filter((v) => result.forgotten.includes(v.id))
      .map(({ id, reasons }) => ({ id, reasons }));
    const kept = result.verdicts.filter((v) => v.action === 'keep').length;
    await finishPurgeRun(ctx.db, runId, { forgotten, kept });
    log.info({ reason: p.reason, forgotten: result.forgotten, kept }, 'purge: forgot what retention lets go');
    return {
      forgotten: result.forgotten,
      snapshotsRemoved: result.snapshotsRemoved,
      kept,
      classesExpired: classes.expired,
    };
  } catch (err) {
    await finishPurgeRun(ctx.db, runId, { error: errorMessage(err) });
    throw err;
  }
}
