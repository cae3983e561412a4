/** Turns an erasure request into its catalog row and an erasure job, both or neither; once per scope. */
import { randomUUID } from 'node:crypto';
import { transaction } from '../catalog/db.js';
import { createErasure, type Erasure } from '../catalog/erasures.js';
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
