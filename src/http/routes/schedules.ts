/** /api/schedules and /api/weddings/:id/protection: the wedding-aware schedules, their preview and one wedding's protection. */
import { Router } from 'express';
import { z } from 'zod';
import {
  editSchedule,
  getSchedule,
  listSchedules,
  setScheduleTemplateKey,
  type ScheduleListing,
} from '../../catalog/schedules.js';
import { cronPatternSchema, tierEditSchema, timeZoneSchema } from '../../config/scheduling.js';
import type { AppContext } from '../../context.js';
import { NotFoundError, ValidationError } from '../../errors.js';
import { CADENCE_SCHEDULE } from '../../producers/cadence.js';
import { previewSchedules, weddingProtection } from '../../producers/protection.js';
import { removeScheduler, specOfRow, upsertSchedulers } from '../../producers/schedules.js';
import { idSchema } from '../../queues/payloads.js';
import { requireScope } from '../auth.js';
import { methodNotAllowed } from '../errors.js';
import { rateLimit } from '../limits.js';
import { loadStatus } from '../load-status.js';

export const scheduleParams = z.object({ id: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/) });
export const weddingParams = z.object({ id: idSchema });
export const previewQuery = z.object({ days: z.coerce.number().int().min(1).max(31).default(7) });

const tierEdit = tierEditSchema;
export const scheduleBody = z
  .strictObject({
    pattern: cronPatternSchema.optional().describe('cron pattern (5 or 6 fields); replaces every'),
    every: z.number().int().min(1000).optional().describe('milliseconds between runs; replaces pattern'),
    tz: timeZoneSchema.optional().describe('IANA time zone of the pattern'),
    enabled: z.boolean().optional(),
    tiers: z
      .strictObject({
        week: tierEdit.optional(),
        month: tierEdit.optional(),
        quarter: tierEdit.optional(),
        later: tierEdit.optional(),
        after: tierEdit.optional(),
      })
      .optional()
      .describe(`tier cadences and RPOs (only on ${CADENCE_SCHEDULE}); unknown tiers are refused`),
  })
  .refine((b) => !(b.pattern && b.every), { message: 'give pattern or every, not both', path: ['every'] });

const scheduleJson = (s: ScheduleListing) => ({
  id: s.id,
  queue: s.queue,
  pattern: s.pattern,
  every: s.every,
  tz: s.tz,
  enabled: s.enabled,
  data: s.data,
  editedBy: s.editedBy,
  editedAt: s.editedAt,
  updatedAt: s.updatedAt,
});

export function schedulesRouter(ctx: AppContext): Router {
  const r = Router();
  r.get('/', requireScope('backups:read'), async (_req, res) => {
    // what load management holds back now (backpressure, source guard), beside what is scheduled
    res.json({ schedules: (await listSchedules(ctx.db)).map(scheduleJson), load: await loadStatus(ctx) });
  });

  r.get('/preview', requireScope('backups:read'), async (req, res) => {
    const { days } = previewQuery.parse(req.query);
    res.json(await previewSchedules(ctx, days));
  });

  r.put('/:id', rateLimit(ctx), requireScope('schedules:write'), async (req, res) => {
    const { id } = scheduleParams.parse(req.params);
    res.locals.auditResource = `schedule:${id}`;
    const body = scheduleBody.parse(req.body ?? {});
    if (!(await getSchedule(ctx.db, id))) throw new NotFoundError(`schedule ${id} not found`);
    if (body.tiers && id !== CADENCE_SCHEDULE)
      throw new ValidationError(`tiers: only the ${CADENCE_SCHEDULE} schedule has tiers`, {
        details: [{ field: 'tiers', message: `only on ${CADENCE_SCHEDULE}` }],
      });
    if (body.tiers) {
      const current = ((await getSchedule(ctx.db, id))?.data.tiers ?? {}) as Record<string, object>;
      const merged = { ...current };
      for (const [t, v] of Object.entries(body.tiers)) merged[t] = { ...current[t], ...v };
      await setScheduleTemplateKey(ctx.db, id, 'tiers', merged);
    }
    const row = await editSchedule(ctx.db, id, body, req.apiKey?.name);
    if (!row) throw new NotFoundError(`schedule ${id} not found`);
    // Redis follows at once; the reconciler and the next start-up rebuild agree with the catalog
    if (row.enabled) await upsertSchedulers(ctx, [specOfRow(row)]);
    else await removeScheduler(ctx, specOfRow(row));
    res.json(scheduleJson(row));
  });
  methodNotAllowed(r);
  return r;
}

export function weddingsRouter(ctx: AppContext): Router {
  const r = Router();
  r.get('/:id/protection', requireScope('backups:read'), async (req, res) => {
    const { id } = weddingParams.parse(req.params);
    res.json(await weddingProtection(ctx, id));
  });
  methodNotAllowed(r);
  return r;
}
