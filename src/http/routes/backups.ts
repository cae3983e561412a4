/** /api/backups: request backups, follow their operations, list recovery points with their 3-2-1 status. */
import { Router } from 'express';
import { z } from 'zod';
import { getOperation } from '../../catalog/operations.js';
import { getTest } from '../../catalog/backup-tests.js';
import type { AppContext } from '../../context.js';
import { NotFoundError } from '../../errors.js';
import { requestBackup } from '../../producers/backups.js';
import { requestValidation } from '../../producers/validation.js';
import { onRequestPath } from '../../queues/connection.js';
import { backupTypeSchema, componentSchema, idSchema } from '../../queues/payloads.js';
import { requireScope } from '../auth.js';
import { methodNotAllowed } from '../errors.js';
import { listPoints, listQuery } from './point-list.js';
import { rateLimit } from '../limits.js';

export const createBackupBody = z.strictObject({
  type: backupTypeSchema,
  components: z.array(componentSchema).optional(),
  weddingId: idSchema.optional(),
});

/** Idempotency-Key: printable ASCII without spaces. */
export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
export const idempotencyHeader = z.object({
  'Idempotency-Key': z
    .string()
    .regex(IDEMPOTENCY_KEY, 'printable ASCII without spaces, at most 255 characters')
    .optional()
    .describe('names this request for good: send the same one when retrying'),
});

export const validationBody = z.strictObject({
  recoveryPointId: idSchema,
  mode: z.enum(['quick', 'full', 'drill']),
  sample: z.number().gt(0).max(1).optional(),
});

export const statusParams = z.object({ operationId: z.uuid() });
export const testParams = z.object({ testId: z.uuid() });

export function backupsRouter(ctx: AppContext): Router {
  const r = Router();
  // Every mutating route of a router counts against its key's limit (targets has none yet).
  r.use(rateLimit(ctx));

  const create = [
    requireScope('backups:write'),
    async (req: import('express').Request, res: import('express').Response) => {
      const body = createBackupBody.parse(req.body ?? {});
      const idempotencyKey = idempotencyHeader.parse({ 'Idempotency-Key': req.get('idempotency-key') })[
        'Idempotency-Key'
      ];
      const { operationId, priority, existing } = await requestBackup(ctx, body, {
        requestedBy: req.apiKey?.name,
        apiKeyId: req.apiKey?.id,
        idempotencyKey,
      });
      res.locals.auditResource = `operation:${operationId}`;
      // 202: a new operation was queued; 200: the request named an existing one, whose id this is.
      if (existing) res.set('Idempotent-Replayed', 'true');
      res.status(existing ? 200 : 202).json({
        operationId,
        priority,
        statusUrl: `/api/backups/status/${operationId}`,
        ...(existing && { existing }),
      });
    },
  ];
  r.post('/', ...create);
  r.post('/create', ...create);

  r.get('/', requireScope('backups:read'), async (req, res) => {
    res.json({ recoveryPoints: await listPoints(ctx, listQuery.parse(req.query)) });
  });

  r.get('/status/:operationId', requireScope('backups:read'), async (req, res) => {
    const { operationId: id } = statusParams.parse(req.params);
    const op = await getOperation(ctx.db, id);
    if (!op) throw new NotFoundError(`operation ${id} not found`);
    const followUps = await Promise.all(
      op.followUps.map(async (f) => {
        const queue = f.queue as keyof typeof ctx.queues.queues;
        const state =
          queue in ctx.queues.queues
            ? await onRequestPath(ctx.queues, (q) => q[queue].getJobState(f.jobId))
            : 'unknown';
        return { ...f, state };
      }),
    );
    res.json({
      operationId: op.id,
      state: op.state,
      type: op.type,
      weddingId: op.weddingId,
      recoveryPointId: op.recoveryPointId,
      priority: op.priority,
      progress: op.progress,
      bytes: op.bytes,
      error: op.error,
      attempts: op.attempts,
      followUps,
      createdAt: op.createdAt,
      finishedAt: op.finishedAt,
    });
  });

  r.post('/validation', requireScope('validation:write'), async (req, res) => {
    const testId = await requestValidation(ctx, validationBody.parse(req.body ?? {}));
    res.locals.auditResource = `test:${testId}`;
    res.status(202).json({ testId });
  });

  r.get('/validation/:testId', requireScope('backups:read'), async (req, res) => {
    const { testId: id } = testParams.parse(req.params);
    const t = await getTest(ctx.db, id);
    if (!t) throw new NotFoundError(`validation ${id} not found`);
    res.json(t);
  });

  methodNotAllowed(r);
  return r;
}
