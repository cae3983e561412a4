/** /api/dr: disaster-recovery plans (built-in and custom), executing them, validating recoveries, drills. */
import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { z } from 'zod';
import { createPlan, listDrills } from '../../catalog/dr.js';
import { getRecovery } from '../../catalog/recoveries.js';
import type { AppContext } from '../../context.js';
import { validateRecovery } from '../../engine/validate-recovery.js';
import { ConflictError, NotFoundError } from '../../errors.js';
import { SCENARIOS, type Scenario } from '../../policy/dr-plans.js';
import { executePlan, listAllPlans, requestDrill, resolvePlan } from '../../producers/dr.js';
import { idSchema } from '../../queues/payloads.js';
import { copiesFor } from '../../workers/restore.js';
import { requireScope } from '../auth.js';
import { methodNotAllowed } from '../errors.js';
import { rateLimit } from '../limits.js';

export const planParamsSchema = z.strictObject({
  lostTarget: z.string().min(1).optional(),
  region: z.string().min(1).optional(),
  before: z.iso.datetime({ offset: true }).optional(),
  weddingId: idSchema.optional(),
  deletedAt: z.iso.datetime({ offset: true }).optional(),
});
export const customPlanBody = z.strictObject({
  name: z.string().min(1).max(200),
  scenario: z.enum(SCENARIOS),
  description: z.string().max(2000).optional(),
  params: planParamsSchema.default({}),
});
export const executeBody = z.strictObject({
  targetDatabase: z.string().min(1).optional(),
  params: planParamsSchema.default({}),
});
export const drillBody = z.strictObject({
  scenario: z.enum(SCENARIOS),
  params: planParamsSchema.default({}),
});
const planParams = z.object({ id: z.string().min(1).max(100) });
const recoveryParams = z.object({ id: z.uuid() });

export function drRouter(ctx: AppContext): Router {
  const r = Router();
  r.use(rateLimit(ctx));
  r.get('/plans', requireScope('backups:read'), async (_req, res) => {
    res.json({ plans: await listAllPlans(ctx) });
  });
  r.get('/plans/:id', requireScope('backups:read'), async (req, res) => {
    res.json(await resolvePlan(ctx, planParams.parse(req.params).id));
  });
  r.post('/plans', requireScope('dr:write'), async (req, res) => {
    const body = customPlanBody.parse(req.body ?? {});
    const id = randomUUID();
    // the steps are derived when the plan is read: stored ones would go stale as copies change
    await createPlan(ctx.db, { id, description: body.description ?? null, ...body, steps: [] });
    res.locals.auditResource = `dr-plan:${id}`;
    res.status(201).json(await resolvePlan(ctx, id));
  });
  r.post('/plans/:id/execute', requireScope('dr:write'), async (req, res) => {
    const body = executeBody.parse(req.body ?? {});
    const plan = await resolvePlan(ctx, planParams.parse(req.params).id, body.params);
    const out = await executePlan(ctx, plan, { targetDatabase: body.targetDatabase });
    res.locals.auditResource = out.recoveryId ? `recovery:${out.recoveryId}` : `dr-plan:${plan.id}`;
    res.status(out.recoveryId ? 202 : 200).json({ planId: plan.id, scenario: plan.scenario, ...out });
  });
  r.post('/recoveries/:id/validate', requireScope('dr:write'), async (req, res) => {
    const { id } = recoveryParams.parse(req.params);
    const rec = await getRecovery(ctx.db, id);
    if (!rec) throw new NotFoundError(`recovery ${id} not found`);
    const pointId = rec.basePoint?.id ?? rec.recoveryPointId;
    if (rec.state !== 'completed' || !pointId || !rec.targetDatabase)
      throw new ConflictError(
        `recovery ${id} is ${rec.state}: only a finished database recovery can be validated`,
      );
    const copies = await copiesFor(ctx, undefined);
    const v = await validateRecovery(
      copies,
      ctx.config.masterKey,
      pointId,
      rec.targetDatabase,
      rec.weddingId ?? undefined,
    );
    res.locals.auditResource = `recovery:${id}`;
    res.json({ recoveryId: id, ...v });
  });
  r.get('/drills', requireScope('backups:read'), async (req, res) => {
    const scenario = z.enum(SCENARIOS).optional().parse(req.query.scenario);
    res.json({ drills: await listDrills(ctx.db, scenario ? { scenario } : {}) });
  });
  r.post('/drills', requireScope('dr:write'), async (req, res) => {
    const body = drillBody.parse(req.body ?? {});
    const out = await requestDrill(ctx, body.scenario as Scenario, 'demand', body.params);
    res.locals.auditResource = `dr-drill:${out.drillId}`;
    res.status(202).json(out);
  });
  methodNotAllowed(r);
  return r;
}
