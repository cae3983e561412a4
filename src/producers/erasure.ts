/**
 * Erasures: a request turned into its catalog row and an erasure job, both or neither, once per
 * scope; and the one way an erasure is carried out, whoever asked (the job, `wedvault erase`, a
 * data class's expiry).
 */
import { randomUUID } from 'node:crypto';
import { transaction } from '../catalog/db.js';
import { createErasure, updateErasure, type Erasure } from '../catalog/erasures.js';
import { listLivePoints, updatePointObjects } from '../catalog/recovery-points.js';
import { objectsChecksum } from '../engine/backup.js';
import {
  certify,
  eraseOnTarget,
  type ErasureCertificate,
  type ErasureRequest,
  type TargetErasure,
} from '../engine/erase.js';
import { Repository } from '../engine/repo/repository.js';
import type { RetentionContext } from './retention.js';
import type { AppContext } from '../context.js';
import { supplierScope, weddingScope } from '../engine/api.js';
import { onRequestPath } from '../queues/connection.js';
import { JOBS, QUEUES, jobIds } from '../queues/names.js';
import type { ErasurePayload } from '../queues/payloads.js';
import { PRIORITY } from '../queues/priority.js';
import { findWedding } from './backups.js';
import { listActiveHolds, type LegalHold } from '../catalog/holds.js';
import { weddingsOfPoints } from '../engine/forget.js';
import { ConflictError } from '../errors.js';

/**
 * A legal hold on the wedding, or on a recovery point that holds it (read from the point's tree; a
 * tree no copy opens counts as holding it), refuses the erasure with a ConflictError naming the hold.
 */
async function refuseIfHeld(ctx: AppContext, weddingId: string): Promise<void> {
  const holds = await listActiveHolds(ctx.db);
  const refuse = (h: LegalHold, how: string) => {
    throw new ConflictError(`wedding ${weddingId} is under legal hold ${h.id}${how}: ${h.reason}`, {
      details: { holdId: h.id, weddingId },
    });
  };
  const direct = holds.find((h) => h.weddingId === weddingId);
  if (direct) refuse(direct, '');
  const onPoints = holds.filter((h) => h.recoveryPointId !== null);
  if (onPoints.length === 0) return;
  const copies = ctx.config.targets.map((t) => ({ target: t.name, storage: ctx.storage(t.name) }));
  const weddings = await weddingsOfPoints(
    copies,
    ctx.config.masterKey,
    onPoints.map((h) => h.recoveryPointId!),
  );
  for (const h of onPoints) {
    const held = weddings.get(h.recoveryPointId!);
    if (held === undefined || held.includes(weddingId)) refuse(h, ` (recovery point ${h.recoveryPointId})`);
  }
}

export interface ErasureRequestInput {
  weddingId?: string | undefined;
  supplierId?: string | undefined;
  reason: string;
  requestedBy: string;
}

/**
 * The erasure of the wedding (404 when neither the source nor any point knows it) or supplier; a
 * second request for the same scope answers the first erasure (`created: false`).
 */
export async function requestErasure(
  ctx: AppContext,
  req: ErasureRequestInput,
): Promise<{ erasure: Erasure; created: boolean }> {
  if (req.weddingId !== undefined) {
    await findWedding(ctx, req.weddingId);
    await refuseIfHeld(ctx, req.weddingId);
  }
  const scope = req.weddingId !== undefined ? weddingScope(req.weddingId) : supplierScope(req.supplierId!);
  return transaction(ctx.db, async (client) => {
    const out = await createErasure(client, {
      id: randomUUID(),
      scope,
      reason: req.reason,
      requestedBy: req.requestedBy,
    });
    if (!out.created) return out;
    const data: ErasurePayload = { erasureId: out.erasure.erasureId };
    // the row commits only once Redis took the job
    await onRequestPath(ctx.queues, (q) =>
      q[QUEUES.erasure].add(JOBS.erasure, data, {
        jobId: jobIds.erasure(out.erasure.erasureId),
        priority: PRIORITY.maintenance,
      }),
    );
    return out;
  });
}

/** What the engine and the certificate are told of a recorded erasure. */
export const requestOf = (e: Erasure): ErasureRequest => ({
  erasureId: e.erasureId,
  scope: e.scope,
  reason: e.reason,
  requestedBy: e.requestedBy,
  requestedAt: e.createdAt.toISOString(),
});

/** How long an erasure waits on a target for running backups and replications to let go of it. */
export const ERASURE_LOCK_WAIT_MS = 10 * 60_000;

/**
 * Carries out a recorded erasure: every target in turn, the primary first (a rerun finds the keys
 * gone and proves it again), each target's outcome recorded as it ends; then the points' object
 * lists refreshed and the certificate signed. A failure is thrown with the progress recorded:
 * the caller records the failure as its own policy says (a job that will retry, or for good).
 */
export async function carryOutErasure(
  ctx: RetentionContext,
  req: ErasureRequest,
  opts: { waitMs: number; onTarget?: (target: string) => void },
): Promise<ErasureCertificate> {
  await updateErasure(ctx.db, req.erasureId, { status: 'running' });
  const done: TargetErasure[] = [];
  for (const t of ctx.config.targets) {
    done.push(await eraseOnTarget(t.name, ctx.storage(t.name), ctx.config.masterKey, req, opts));
    await updateErasure(ctx.db, req.erasureId, { status: 'running', targets: done });
    opts.onTarget?.(t.name);
  }
  await refreshPointObjects(ctx);
  const certificate = certify(req, done, ctx.config.masterKey);
  await updateErasure(ctx.db, req.erasureId, { status: 'completed', targets: done, certificate });
  return certificate;
}

/**
 * Points whose object lists name key objects the erasure rewrote (a key bundle is replaced by one
 * without the scope) get their lists again from the primary, so replication and verification look
 * for what the repository holds now.
 */
async function refreshPointObjects(ctx: RetentionContext): Promise<void> {
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
