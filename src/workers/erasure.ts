/** Erasure processor: the scope's keys destroyed on every target, proved, and certified. */
import type { Job } from 'bullmq';
import { getErasure, listErasures, updateErasure } from '../catalog/erasures.js';
import type { AppContext } from '../context.js';
import { withPrune, type ErasureCertificate, type PruneRecord } from '../engine/erase.js';
import { carryOutErasure, ERASURE_LOCK_WAIT_MS, requestOf } from '../producers/erasure.js';
import type { TargetOutcome } from '../engine/prune-targets.js';
import { ConflictError, TransientError, WedvaultError, errorMessage, isRetryable } from '../errors.js';
import { erasurePayload } from '../queues/payloads.js';

export async function processErasure(job: Job, ctx: AppContext): Promise<ErasureCertificate> {
  const p = erasurePayload.parse(job.data);
  const e = await getErasure(ctx.db, p.erasureId);
  // the request's transaction commits the row once Redis took the job: a worker may be first
  if (!e) throw new TransientError(`erasure ${p.erasureId} not in the catalog yet`);
  if (e.status === 'completed' && e.certificate) return e.certificate as unknown as ErasureCertificate;
  const log = ctx.log.child({ jobId: job.id, erasureId: e.erasureId, scope: e.scope });
  try {
    const certificate = await carryOutErasure(ctx, requestOf(e), {
      waitMs: ERASURE_LOCK_WAIT_MS,
      onTarget: (target) => log.info({ target }, 'scope erased on target'),
    });
    log.info({ targets: ctx.config.targets.length }, 'erasure completed');
    return certificate;
  } catch (caught) {
    // a target still locked after the wait: busy, not refused; the job tries again later
    const err =
      caught instanceof ConflictError
        ? new TransientError(`a target stayed locked: ${caught.message}`, { cause: caught })
        : caught;
    const unrecoverable = err instanceof WedvaultError && !isRetryable(err);
    const final = unrecoverable || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    await updateErasure(ctx.db, e.erasureId, {
      status: final ? 'failed' : 'running',
      error: errorMessage(err),
    });
    throw err;
  }
}

/**
 * After a prune: every completed erasure whose certificate names no prune yet gets this one's
 * figures per target (an erased scope's blobs go at the first prune after its erasure), signed again.
 */
export async function addPruneToCertificates(ctx: AppContext, outcomes: TargetOutcome[]): Promise<number> {
  const prunedAt = new Date().toISOString();
  const prune: PruneRecord[] = outcomes.map((o) => ({
    target: o.target,
    prunedAt,
    erasedBlobs: o.result?.erasedBlobs ?? 0,
    bytesFreed: o.result?.bytesFreed ?? 0,
    ...(o.error ? { error: o.error } : o.skipped ? { error: o.skipped } : {}),
  }));
  let n = 0;
  for (const e of await listErasures(ctx.db)) {
    const cert = e.certificate as unknown as ErasureCertificate | null;
    if (e.status !== 'completed' || !cert || cert.prune) continue;
    await updateErasure(ctx.db, e.erasureId, {
      status: 'completed',
      certificate: withPrune(cert, prune, ctx.config.masterKey),
    });
    n++;
  }
  return n;
}
