/** Purge processor: forget what the retention policy lets go, on every target, and record the run. */
import type { Job } from 'bullmq';
import { finishPurgeRun, startPurgeRun } from '../catalog/forget.js';
import type { AppContext } from '../context.js';
import { errorMessage } from '../errors.js';
import { runForget, type ForgetResult } from '../producers/retention.js';
import { purgePayload } from '../queues/payloads.js';
import { operationIdForJob } from './backup.js';

export async function processPurge(
  job: Job,
  ctx: AppContext,
): Promise<Omit<ForgetResult, 'verdicts'> & { kept: number }> {
  const p = purgePayload.parse(job.data);
  const log = ctx.log.child({ jobId: job.id, queue: job.queueName });
  // a re-delivered job keeps its run row: the id follows the job, not the attempt
  const runId = operationIdForJob(`purge:${job.id}@${job.timestamp}`);
  await startPurgeRun(ctx.db, runId, job.id);
  try {
    const result = await runForget(ctx);
    // TODO(prune): once src/engine/repo/prune.ts exists, prune every target here (blobs no kept
    // point references); until then forgotten points' blobs stay in the repositories.
    const forgotten = result.verdicts
      .filter((v) => result.forgotten.includes(v.id))
      .map(({ id, reasons }) => ({ id, reasons }));
    const kept = result.verdicts.filter((v) => v.action === 'keep').length;
    await finishPurgeRun(ctx.db, runId, { forgotten, kept });
    log.info({ reason: p.reason, forgotten: result.forgotten, kept }, 'purge: forgot what retention lets go');
    return { forgotten: result.forgotten, snapshotsRemoved: result.snapshotsRemoved, kept };
  } catch (err) {
    await finishPurgeRun(ctx.db, runId, { error: errorMessage(err) });
    throw err;
  }
}
