/** Erasure processor: the scope's keys destroyed on every target, proved, and certified. */
import type { Job } from 'bullmq';
import { getErasure, listErasures, updateErasure } from '../catalog/erasures.js';
import { listLivePoints, updatePointObjects } from '../catalog/recovery-points.js';
import { objectsChecksum } from '../engine/backup.js';
import { Repository } from '../engine/repo/repository.js';
import type { AppContext } from '../context.js';
import {
  certify,
  eraseOnTarget,
  withPrune,
  type ErasureCertificate,
  type PruneRecord,
  type TargetErasure,
} from '../engine/erase.js';
import type { TargetOutcome } from '../engine/prune-targets.js';
import { ConflictError, TransientError, WedvaultError, errorMessage, isRetryable } from '../errors.js';
import { erasurePayload } from '../queues/payloads.js';

/** How long an erasure waits on a target for running backups and replications to let go of it. */
export const ERASURE_LOCK_WAIT_MS = 10 * 60_000;

/**
 * Points whose object lists name key objects the erasure rewrote (a key bundle is replaced by one
 * without the scope) get their lists again from the primary, so replication and verification look
 * for what the repository holds now.
 */
async function refreshPointObjects(ctx: AppContext): Promise<void> {
  const storage = ctx.storage(ctx.config.primaryTarget);
  const keys = new Set<string>();
  for await (const o of storage.list('keys/')) keys.add(o.key);
  const stale = (await listLivePoints(ctx.db)).filter((p) =>
    p.objects.some((o) => o.key.startsWith('keys/') && !keys.has(o.key)),
  );
  if (stale.length === 0) return;
  const repo = await Repository.open(storage, ctx.config.masterKey);
  for (const p of stale) {
    const objects = await repo.objectsForSnapshot(p.id).catch(() => undefined);
    if (objects) await updatePointObjects(ctx.db, p.id, objects, objectsChecksum(objects));
  }
}

export async function processErasure(job: Job, ctx: AppContext): Promise<ErasureCertificate> {
  const p = erasurePayload.parse(job.data);
  const e = await getErasure(ctx.db, p.erasureId);
  // the request's transaction commits the row once Redis took the job: a worker may be first
  if (!e) throw new TransientError(`erasure ${p.erasureId} not in the catalog yet`);
  if (e.status === 'completed' && e.certificate) return e.certificate as unknown as ErasureCertificate;
  const log = ctx.log.child({ jobId: job.id, erasureId: e.erasureId, scope: e.scope });
  await updateErasure(ctx.db, e.erasureId, { status: 'running' });
  const req = {
    erasureId: e.erasureId,
    scope: e.scope,
    reason: e.reason,
    requestedBy: e.requestedBy,
    requestedAt: e.createdAt.toISOString(),
  };
  const done: TargetErasure[] = [];
  try {
    // every target, the primary first: a rerun finds the keys gone and proves it again
    for (const t of ctx.config.targets) {
      done.push(
        await eraseOnTarget(t.name, ctx.storage(t.name), ctx.config.masterKey, req, {
          waitMs: ERASURE_LOCK_WAIT_MS,
        }),
      );
      await updateErasure(ctx.db, e.erasureId, { status: 'running', targets: done });
      log.info({ target: t.name }, 'scope erased on target');
    }
    await refreshPointObjects(ctx);
    const certificate = certify(req, done, ctx.config.masterKey);
    await updateErasure(ctx.db, e.erasureId, { status: 'completed', targets: done, certificate });
    log.info({ targets: done.length }, 'erasure completed');
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
      targets: done,
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
