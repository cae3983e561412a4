/** The cadence planner: reads weddings (source) and their newest points (catalog), enqueues the backups due now. */
import { indexNewest, newestPoints } from '../catalog/cadence.js';
import { getSchedule } from '../catalog/schedules.js';
import type { SchedulingConfig, TierCadence } from '../config/index.js';
import type { AppContext } from '../context.js';
import { readWeddings, type SourceWedding } from '../engine/postgres/weddings.js';
import { planDue, type Component, type PlannedBackup } from '../policy/cadence.js';
import { JOBS, QUEUES, jobIds } from '../queues/names.js';
import type { BackupPayload } from '../queues/payloads.js';
import { PRIORITY } from '../queues/priority.js';

/** A test or bench passes its own clock; the service uses the wall clock. */
export type Clock = () => Date;
export const wallClock: Clock = () => new Date();

/**
 * Hook for the load manager (backpressure, source guard): asked once per tick with the plan; the
 * backups it returns are enqueued, the rest stay due and come back next tick (deferred, never dropped).
 */
export type AdmitScheduled = (due: PlannedBackup[]) => Promise<PlannedBackup[]> | PlannedBackup[];

export interface TickResult {
  weddings: number;
  due: number;
  /** Handed to the queue; one whose wedding already has that backup waiting collapsed into it. */
  submitted: number;
  deferred: number;
  byTier: Record<string, number>;
}

/** The weddings the source knows; none when its ceremony table is missing. */
export async function sourceWeddings(ctx: AppContext, ids?: readonly string[]): Promise<SourceWedding[]> {
  return (await readWeddings(ctx.config.sources.postgres, ids)) ?? [];
}

/** The planner schedule's id (its catalog row's template holds the API's tier overrides). */
export const CADENCE_SCHEDULE = 'wedding-cadence';

/** The config's scheduling with the tier cadences edited through PUT /api/schedules/wedding-cadence. */
export async function effectiveScheduling(ctx: AppContext): Promise<SchedulingConfig> {
  const base = ctx.config.scheduling;
  const row = await getSchedule(ctx.db, CADENCE_SCHEDULE);
  const edits = (row?.data.tiers ?? {}) as Partial<
    Record<keyof SchedulingConfig['tiers'], Partial<TierCadence>>
  >;
  const tiers = { ...base.tiers };
  for (const t of Object.keys(tiers) as (keyof typeof tiers)[]) tiers[t] = { ...tiers[t], ...edits[t] };
  return { ...base, tiers };
}

export async function planNow(
  ctx: AppContext,
  now: Date,
  weddings?: SourceWedding[],
): Promise<PlannedBackup[]> {
  const all = weddings ?? (await sourceWeddings(ctx));
  const newest = indexNewest(await newestPoints(ctx.db));
  return planDue(
    {
      weddings: all,
      newest: (id, c) => newest(id, c)?.newest,
      now,
      continuousCapture: ctx.config.sources.postgres.pitr.enabled,
    },
    await effectiveScheduling(ctx),
  );
}

const BULK = 1_000;

/** One planner tick: plan, let the load manager admit, enqueue with one deduplication id per wedding and component. */
export async function runCadenceTick(
  ctx: AppContext,
  opts: { clock?: Clock; admit?: AdmitScheduled } = {},
): Promise<TickResult> {
  const now = (opts.clock ?? wallClock)();
  const weddings = await sourceWeddings(ctx);
  const due = await planNow(ctx, now, weddings);
  const admitted = opts.admit ? await opts.admit(due) : due;
  const submitted = await enqueueScheduledBackups(ctx, admitted);
  const byTier: Record<string, number> = {};
  for (const d of due) byTier[d.tier] = (byTier[d.tier] ?? 0) + 1;
  const result = {
    weddings: weddings.length,
    due: due.length,
    submitted,
    deferred: due.length - admitted.length,
    byTier,
  };
  ctx.log.info({ ...result, at: now.toISOString() }, 'cadence planner tick');
  return result;
}

export function scheduledBackupJob(d: PlannedBackup) {
  const data: BackupPayload = {
    type: d.component === 'files' ? 'files' : 'incremental',
    components: [d.component],
    weddingId: d.weddingId,
    scheduleId: `cadence-${d.tier}`,
  };
  return {
    name: JOBS.backup,
    data,
    opts: {
      priority: PRIORITY[d.tier],
      // released when the job completes or fails (not a fixed job id, which BullMQ would keep
      // refusing while the finished job is retained): at most one waiting backup per wedding and type
      deduplication: { id: jobIds.weddingBackup(d.weddingId, d.component satisfies Component) },
    },
  };
}

/** Coalesced mode: one whole-source job per component, at the priority of its nearest due tier. */
export function coalescedBackupJobs(due: PlannedBackup[]) {
  const best = new Map<Component, PlannedBackup>();
  for (const d of due) {
    const b = best.get(d.component);
    if (!b || PRIORITY[d.tier] < PRIORITY[b.tier]) best.set(d.component, d);
  }
  return [...best.values()].map((d) => {
    const job = scheduledBackupJob(d);
    const { weddingId: _, ...data } = job.data;
    return {
      ...job,
      data,
      opts: { ...job.opts, deduplication: { id: jobIds.coalescedBackup(d.component) } },
    };
  });
}

/** Adds the backups in bulk (a collapsed add answers with the waiting job's id); returns how many were handed over. */
export async function enqueueScheduledBackups(ctx: AppContext, due: PlannedBackup[]): Promise<number> {
  const queue = ctx.queues.queues[QUEUES.backup];
  if (ctx.config.scheduling.jobs === 'coalesced') {
    await queue.addBulk(coalescedBackupJobs(due));
    return due.length;
  }
  for (let i = 0; i < due.length; i += BULK)
    await queue.addBulk(due.slice(i, i + BULK).map(scheduledBackupJob));
  return due.length;
}
