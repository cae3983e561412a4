/**
 * Disaster-recovery plans put to work: what the catalog knows handed to the pure plans
 * (policy/dr-plans.ts), a plan executed as a recovery job, drills on demand or on schedule, and the
 * catalog rebuilt from the repositories.
 */
import { randomUUID } from 'node:crypto';
import { finishDrill, getPlan, lastDrill, listPlans, startDrill } from '../catalog/dr.js';
import { rebuildCatalog } from '../catalog/rebuild.js';
import { listRecoveryPoints, listReplicas } from '../catalog/recovery-points.js';
import { listTargetHealth } from '../catalog/targets.js';
import type { AppContext } from '../context.js';
import { readRepoPoints } from '../engine/repo-points.js';
import { NotFoundError, ValidationError, errorMessage } from '../errors.js';
import {
  buildPlan,
  isScenario,
  SCENARIOS,
  type DrPlan,
  type PlanInput,
  type PlanParams,
  type Scenario,
} from '../policy/dr-plans.js';
import type { RestorePayload } from '../queues/payloads.js';
import { requestRecovery } from './recovery.js';

/** The targets, points and last drill of a scenario, as the plans take them. */
export async function planInput(ctx: AppContext, scenario: Scenario, now = new Date()): Promise<PlanInput> {
  const health = new Map((await listTargetHealth(ctx.db)).map((t) => [t.name, t.healthy]));
  const targets = ctx.config.targets.map((t) => ({
    name: t.name,
    location: t.labels.location,
    healthy: health.get(t.name) ?? true,
  }));
  const points = (await listRecoveryPoints(ctx.db, { limit: 500 })).reverse();
  const replicas = await listReplicas(
    ctx.db,
    points.map((p) => p.id),
  );
  const drill = await lastDrill(ctx.db, scenario);
  return {
    targets,
    primaryTarget: ctx.config.primaryTarget,
    now,
    points: points.map((p) => {
      const mine = replicas.filter((r) => r.recoveryPointId === p.id);
      return {
        id: p.id,
        time: (p.consistentTime ?? p.createdAt).toISOString(),
        type: p.type,
        bytes: p.objects.reduce((s, o) => s + o.size, 0),
        targets: mine.filter((r) => r.state === 'replicated' || r.state === 'verified').map((r) => r.target),
        verified: p.healthy && mine.some((r) => r.state === 'verified'),
      };
    }),
    lastDrill: drill && { rtoS: drill.rtoS, bytes: drill.bytes, finishedAt: drill.finishedAt },
  };
}

/** A built-in plan (its id is the scenario) or a custom one (a uuid), built against the catalog now. */
export async function resolvePlan(ctx: AppContext, id: string, params: PlanParams = {}): Promise<DrPlan> {
  if (isScenario(id)) return buildPlan(id, await planInput(ctx, id), params);
  const stored = await getPlan(ctx.db, id);
  if (!stored) throw new NotFoundError(`disaster-recovery plan ${id} not found`);
  const scenario = stored.scenario as Scenario;
  return buildPlan(scenario, await planInput(ctx, scenario), { ...stored.params, ...params }, stored);
}

export async function listAllPlans(ctx: AppContext): Promise<DrPlan[]> {
  const builtIn = await Promise.all(SCENARIOS.map((s) => resolvePlan(ctx, s)));
  const custom = await Promise.all((await listPlans(ctx.db)).map((p) => resolvePlan(ctx, p.id)));
  return [...builtIn, ...custom];
}

export interface ExecuteOptions {
  targetDatabase?: string | undefined;
  drillId?: string | undefined;
  /** Record the recovery without a job: the caller runs it (the CLI's `dr run`). */
  inline?: boolean | undefined;
}

/**
 * Runs a plan: the catalog rebuild at once; every other scenario as a recovery job (its id
 * returned) reading only the plan's copies: a point-in-time recovery to the latest time (or to
 * just before the deletion, merged) where capture runs, else a restore of the plan's point.
 */
export async function executePlan(
  ctx: AppContext,
  plan: DrPlan,
  opts: ExecuteOptions,
): Promise<{
  recoveryId?: string;
  payload?: RestorePayload;
  rebuilt?: Awaited<ReturnType<typeof rebuildFromTargets>>;
}> {
  if (plan.scenario === 'catalog-lost') return { rebuilt: await rebuildFromTargets(ctx, plan.copies) };
  if (plan.warnings.length && !plan.point)
    throw new ValidationError(`plan ${plan.id} cannot run: ${plan.warnings.join('; ')}`);
  const weddingDeleted = plan.scenario === 'wedding-deleted';
  const drill = opts.drillId !== undefined;
  const targetDatabase =
    opts.targetDatabase ?? (weddingDeleted && !drill ? ctx.config.sources.postgres.url : undefined);
  if (!targetDatabase) throw new ValidationError('targetDatabase: a connection URL to recover into');
  const pitr =
    ctx.config.sources.postgres.pitr.enabled &&
    plan.scenario !== 'corruption' &&
    plan.scenario !== 'primary-target-lost';
  return requestRecovery(
    ctx,
    {
      ...(weddingDeleted
        ? { targetTime: plan.targetTime, weddingId: plan.params.weddingId, mode: drill ? 'new' : 'merge' }
        : pitr
          ? { targetTime: new Date().toISOString(), staged: true }
          : { recoveryPointId: plan.point!.id }),
      targetDatabase,
      planId: plan.id,
      scenario: plan.scenario,
      targets: plan.copies,
      drillId: opts.drillId,
    },
    new Date(),
    { inline: opts.inline },
  );
}

/** A drill: the scenario's plan run into a scratch database beside the source, measured, then dropped. */
export async function requestDrill(
  ctx: AppContext,
  scenario: Scenario,
  trigger: 'demand' | 'schedule',
  params: PlanParams = {},
): Promise<{ drillId: string; recoveryId?: string }> {
  const plan = await resolvePlan(ctx, scenario, params);
  const drillId = randomUUID();
  await startDrill(ctx.db, { id: drillId, scenario, planId: plan.id, trigger });
  if (scenario === 'catalog-lost') {
    // rebuilding into the live catalog adds nothing that exists: the drill measures reading every copy
    const started = Date.now();
    try {
      const rebuilt = await rebuildFromTargets(ctx, plan.copies);
      await finishDrill(ctx.db, drillId, {
        state: 'completed',
        rtoS: (Date.now() - started) / 1000,
        rpoS: 0,
        result: rebuilt,
      });
    } catch (err) {
      await finishDrill(ctx.db, drillId, { state: 'failed', result: { error: errorMessage(err) } });
      throw err;
    }
    return { drillId };
  }
  const scratch = new URL(ctx.config.sources.postgres.url);
  scratch.pathname = `/wedvault_drill_${drillId.slice(0, 8)}`;
  const { recoveryId } = await executePlan(ctx, plan, { targetDatabase: scratch.toString(), drillId });
  return { drillId, ...(recoveryId && { recoveryId }) };
}

/** Recovery points, replicas and backed-up weddings from the repositories (any one readable copy suffices). */
export async function rebuildFromTargets(ctx: AppContext, targets?: string[]) {
  const names = targets?.length ? targets : ctx.config.targets.map((t) => t.name);
  const copies = names.map((n) => ({ target: n, storage: ctx.storage(n) }));
  const { points, unreadable } = await readRepoPoints(copies, ctx.config.masterKey);
  if (unreadable.length === copies.length)
    throw new ValidationError(
      `no copy could be read: ${unreadable.map((u) => `${u.target}: ${u.error}`).join('; ')}`,
    );
  const added = await rebuildCatalog(ctx.db, points, ctx.config.primaryTarget);
  return { ...added, seen: points.length, unreadable };
}
