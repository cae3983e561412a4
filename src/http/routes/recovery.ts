/** Point-in-time recovery over REST: /api/backups/recovery, /api/restore-points and /api/pitr. */
import { Router } from 'express';
import { z } from 'zod';
import { getRecovery } from '../../catalog/recoveries.js';
import { listRestorePoints, recordRestorePoint, getRestorePoint } from '../../catalog/restore-points.js';
import type { AppContext } from '../../context.js';
import { emitRestorePoint } from '../../engine/pitr/restore-point.js';
import { copyWindows, slotLag } from '../../engine/pitr/status.js';
import { ConflictError, NotFoundError, errorMessage } from '../../errors.js';
import { requestRecovery } from '../../producers/recovery.js';
import { componentSchema, idSchema } from '../../queues/payloads.js';
import { requireScope } from '../auth.js';
import { methodNotAllowed } from '../errors.js';
import { rateLimit } from '../limits.js';
import { PITR_SOURCE } from '../../engine/pitr/types.js';

export const recoveryBody = z.strictObject({
  targetTime: z.iso.datetime({ offset: true, local: false }).optional(),
  targetLsn: z
    .string()
    .regex(/^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/, 'an LSN such as 0/16B3748')
    .optional(),
  restorePoint: z.string().min(1).max(200).optional(),
  inclusive: z.boolean().optional(),
  weddingId: idSchema.optional(),
  components: z.array(componentSchema).optional(),
  targetDatabase: z.string().min(1).optional(),
  mode: z.enum(['new', 'merge']).default('new'),
  dryRun: z.boolean().optional(),
});
export const recoveryParams = z.object({ recoveryId: z.uuid() });
export const restorePointBody = z.strictObject({
  name: z.string().regex(/^[\w.:-]{1,200}$/, 'letters, digits, "_", ".", ":" and "-", at most 200'),
});

export function recoveryRouter(ctx: AppContext): Router {
  const r = Router();
  r.use(rateLimit(ctx));
  r.post('/', requireScope('recovery:write'), async (req, res) => {
    const { recoveryId } = await requestRecovery(ctx, recoveryBody.parse(req.body ?? {}));
    res.locals.auditResource = `recovery:${recoveryId}`;
    res.status(202).json({ recoveryId, statusUrl: `/api/backups/recovery/${recoveryId}` });
  });
  r.get('/:recoveryId', requireScope('backups:read'), async (req, res) => {
    const { recoveryId } = recoveryParams.parse(req.params);
    const rec = await getRecovery(ctx.db, recoveryId);
    if (!rec) throw new NotFoundError(`recovery ${recoveryId} not found`);
    const { targetDatabase, ...shown } = rec;
    // the URL may carry a password: show where, never how
    res.json({ recoveryId, ...shown, targetDatabase: targetDatabase && redactUrl(targetDatabase) });
  });
  methodNotAllowed(r);
  return r;
}

export function restorePointsRouter(ctx: AppContext): Router {
  const r = Router();
  r.use(rateLimit(ctx));
  r.post('/', requireScope('recovery:write'), async (req, res) => {
    const { name } = restorePointBody.parse(req.body ?? {});
    if (await getRestorePoint(ctx.db, name)) throw new ConflictError(`restore point ${name} exists`);
    const { lsn, time } = await emitRestorePoint(ctx.config.sources.postgres.url, name);
    await recordRestorePoint(ctx.db, { name, lsn, time, createdBy: req.apiKey?.name ?? null });
    res.locals.auditResource = `restore-point:${name}`;
    res.status(201).json({ name, lsn, time });
  });
  r.get('/', requireScope('backups:read'), async (_req, res) => {
    res.json({ restorePoints: await listRestorePoints(ctx.db) });
  });
  methodNotAllowed(r);
  return r;
}

/** GET /api/pitr: per source, each target's recoverable window, the capture's lag, RPO now, gaps. */
export function pitrRouter(ctx: AppContext): Router {
  const r = Router();
  r.get('/', requireScope('backups:read'), async (_req, res) => {
    const { url, pitr } = ctx.config.sources.postgres;
    const copies = ctx.config.targets.map((t) => ({ target: t.name, storage: ctx.storage(t.name) }));
    const windows = await copyWindows(copies, ctx.config.masterKey, PITR_SOURCE);
    const lag = await slotLag(url, pitr.slot).catch((err: unknown) => ({ error: errorMessage(err) }));
    // RPO now: the newest segment at least two targets hold (the second newest "newest" of all)
    const newest = windows
      .map((w) => w.window?.newestSegmentAt)
      .filter((t): t is string => !!t)
      .sort()
      .reverse();
    const twice = newest[1];
    const gaps = windows.flatMap((w) => (w.window?.gaps ?? []).map((g) => ({ target: w.target, ...g })));
    res.json({
      sources: [
        {
          source: PITR_SOURCE,
          enabled: pitr.enabled,
          slot: pitr.slot,
          lag,
          rpoNowS: twice === undefined ? null : Math.max(0, (Date.now() - Date.parse(twice)) / 1000),
          newestOnTwoTargets: twice ?? null,
          targets: windows.map((w) => ({
            target: w.target,
            earliest: w.window?.earliest ?? null,
            latest: w.window?.latest ?? null,
            segments: w.window?.segments ?? 0,
            basePoints: w.bases.length,
            gaps: w.window?.gaps ?? [],
            schemaBreaks: w.window?.schemaBreaks ?? [],
            ...(w.error && { error: w.error }),
          })),
          gaps,
        },
      ],
    });
  });
  methodNotAllowed(r);
  return r;
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(not a URL)';
  }
}
