/** /api/compliance: legal holds (place, release, list) and the retention policy with its 30-day preview. */
import { Router } from 'express';
import { z } from 'zod';
import { createHold, listActiveHolds, releaseHold, type LegalHold } from '../../catalog/holds.js';
import { getRecoveryPoint } from '../../catalog/recovery-points.js';
import type { AppContext } from '../../context.js';
import { NotFoundError, ValidationError } from '../../errors.js';
import { findWedding } from '../../producers/backups.js';
import { classesForDisplay, previewClassExpiries } from '../../producers/class-expiry.js';
import { previewRetention } from '../../producers/retention.js';
import { idSchema } from '../../queues/payloads.js';
import { requireScope } from '../auth.js';
import { methodNotAllowed } from '../errors.js';
import { rateLimit } from '../limits.js';

export const holdBody = z
  .strictObject({
    weddingId: idSchema.optional().describe('hold every recovery point holding this wedding'),
    recoveryPointId: idSchema.optional().describe('hold this recovery point'),
    reason: z.string().trim().min(1).max(2000),
    until: z.iso
      .datetime({ offset: true })
      .optional()
      .describe('the hold lapses then; absent: until released'),
  })
  .superRefine((b, ctx) => {
    const both = b.weddingId !== undefined && b.recoveryPointId !== undefined;
    const neither = b.weddingId === undefined && b.recoveryPointId === undefined;
    if (both || neither) {
      ctx.addIssue({
        code: 'custom',
        path: [both ? 'recoveryPointId' : 'weddingId'],
        message: both ? 'give weddingId or recoveryPointId, not both' : 'give weddingId or recoveryPointId',
      });
    }
  });

export const holdParams = z.object({ id: z.uuid() });

const holdJson = (h: LegalHold) => ({
  id: h.id,
  weddingId: h.weddingId,
  recoveryPointId: h.recoveryPointId,
  reason: h.reason,
  until: h.until,
  createdBy: h.createdBy,
  createdAt: h.createdAt,
});

/** The thing a hold names must exist now: a wedding the source or a point knows, or a live point. */
async function checkHoldSubject(ctx: AppContext, body: z.infer<typeof holdBody>): Promise<void> {
  if (body.weddingId !== undefined) await findWedding(ctx, body.weddingId);
  else if (!(await getRecoveryPoint(ctx.db, body.recoveryPointId!))) {
    throw new NotFoundError(`recovery point ${body.recoveryPointId} not found`, {
      details: { field: 'recoveryPointId' },
    });
  }
}

export function complianceRouter(ctx: AppContext): Router {
  const r = Router();
  r.use(rateLimit(ctx));

  r.post('/holds', requireScope('holds:write'), async (req, res) => {
    const body = holdBody.parse(req.body ?? {});
    const until = body.until === undefined ? undefined : new Date(body.until);
    if (until && until <= new Date()) {
      throw new ValidationError('until: must be in the future', {
        details: [{ field: 'until', message: 'must be in the future' }],
      });
    }
    await checkHoldSubject(ctx, body);
    const hold = await createHold(ctx.db, { ...body, until, createdBy: req.apiKey?.id });
    res.locals.auditResource = `hold:${hold.id}`;
    res.status(201).json(holdJson(hold));
  });

  r.delete('/holds/:id', requireScope('holds:write'), async (req, res) => {
    const { id } = holdParams.parse(req.params);
    res.locals.auditResource = `hold:${id}`;
    if (!(await releaseHold(ctx.db, id, req.apiKey?.id))) throw new NotFoundError(`hold ${id} not found`);
    res.status(204).end();
  });

  r.get('/holds', requireScope('backups:read'), async (_req, res) => {
    res.json({ holds: (await listActiveHolds(ctx.db)).map(holdJson) });
  });

  r.get('/retention', requireScope('backups:read'), async (_req, res) => {
    const now = new Date();
    const [preview, classExpiries] = await Promise.all([
      previewRetention(ctx, now),
      previewClassExpiries(ctx, now),
    ]);
    res.json({
      ...preview,
      holds: preview.holds.map(holdJson),
      classes: classesForDisplay(ctx.config.retention.classes ?? []),
      classExpiries,
    });
  });

  methodNotAllowed(r);
  return r;
}
