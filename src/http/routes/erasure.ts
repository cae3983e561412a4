/** /api/compliance/erasure: erase one couple (or supplier) from every copy, and follow it to its certificate. */
import { Router } from 'express';
import { z } from 'zod';
import { getErasure } from '../../catalog/erasures.js';
import type { AppContext } from '../../context.js';
import { NotFoundError } from '../../errors.js';
import { requestErasure } from '../../producers/erasure.js';
import { idSchema } from '../../queues/payloads.js';
import { requireScope } from '../auth.js';
import { methodNotAllowed } from '../errors.js';
import { rateLimit } from '../limits.js';

export const erasureBody = z
  .strictObject({
    weddingId: idSchema.optional(),
    supplierId: idSchema.optional(),
    reason: z.string().trim().min(1).max(1000),
    requestedBy: z.string().trim().min(1).max(200),
  })
  .refine((b) => (b.weddingId === undefined) !== (b.supplierId === undefined), {
    message: 'name exactly one of weddingId and supplierId',
    path: ['weddingId'],
  });

export const erasureParams = z.object({ erasureId: z.uuid() });

export function erasureRouter(ctx: AppContext): Router {
  const r = Router();
  r.use(rateLimit(ctx));
  r.post('/', requireScope('erasures:write'), async (req, res) => {
    const body = erasureBody.parse(req.body ?? {});
    const { erasure, created } = await requestErasure(ctx, body);
    res.locals.auditResource = `erasure:${erasure.erasureId}`;
    // 202: queued now; 200: the scope's erasure was already requested, this is it
    res.status(created ? 202 : 200).json({
      erasureId: erasure.erasureId,
      status: erasure.status,
      statusUrl: `/api/compliance/erasure/${erasure.erasureId}`,
      ...(created ? {} : { existing: true }),
    });
  });
  r.get('/:erasureId', requireScope('erasures:write'), async (req, res) => {
    const { erasureId } = erasureParams.parse(req.params);
    const e = await getErasure(ctx.db, erasureId);
    if (!e) throw new NotFoundError(`erasure ${erasureId} not found`);
    res.json({
      erasureId: e.erasureId,
      scope: e.scope,
      status: e.status,
      reason: e.reason,
      requestedBy: e.requestedBy,
      targets: e.targets.map(({ target, keysDestroyed, objectsRemoved, verifiedAt, verification }) => ({
        target,
        keysDestroyed,
        objectsRemoved,
        verifiedAt,
        verification,
      })),
      certificate: e.certificate,
      error: e.error,
      createdAt: e.createdAt,
      completedAt: e.completedAt,
    });
  });
  methodNotAllowed(r);
  return r;
}
