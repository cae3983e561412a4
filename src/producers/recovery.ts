/**
 * Turns a point-in-time recovery request into its catalog row and a `restore` job, both or
 * neither; refuses (400, naming the field) what can never succeed before anything is queued.
 */
import { randomUUID } from 'node:crypto';
import { transaction } from '../catalog/db.js';
import { createRecovery, type NewRecovery } from '../catalog/recoveries.js';
import { getRestorePoint } from '../catalog/restore-points.js';
import type { AppContext } from '../context.js';
import { copyWindows, overallWindow } from '../engine/pitr/status.js';
import { ValidationError } from '../errors.js';
import { onRequestPath } from '../queues/connection.js';
import { JOBS, QUEUES } from '../queues/names.js';
import type { RestorePayload } from '../queues/payloads.js';
import { PRIORITY } from '../queues/priority.js';
import { PITR_SOURCE } from '../engine/pitr/types.js';

/** The catalog row's fields; a base point asked for (the CLI's `<recoveryPointId>`) is chosen by the engine when absent. */
export interface RecoveryRequest extends Omit<NewRecovery, 'id' | 'components'> {
  components?: ('database' | 'files')[] | undefined;
  /** Read only from these targets (a plan's copies). */
  targets?: string[] | undefined;
  drillId?: string | undefined;
  staged?: boolean | undefined;
}

const refuse = (field: string, message: string, extra: Record<string, unknown> = {}) =>
  new ValidationError(`${field}: ${message}`, { details: [{ field, message, ...extra }] });

/** The cross-field rules a schema cannot say; each names its field. */
export function checkRecoveryRequest(req: RecoveryRequest): void {
  const targets = (['targetTime', 'targetLsn', 'restorePoint'] as const).filter((k) => req[k] !== undefined);
  if (targets.length > 1)
    throw refuse(
      targets[1]!,
      `give one of targetTime, targetLsn and restorePoint, not ${targets.join(' and ')}`,
    );
  // a recovery point alone is a plain restore (a plan's); otherwise a target is needed
  if (targets.length === 0 && req.recoveryPointId === undefined)
    throw refuse('targetTime', 'a recovery needs targetTime, targetLsn or restorePoint');
  if ((req.mode ?? 'new') === 'merge' && req.weddingId === undefined)
    throw refuse('weddingId', 'a merge brings back one wedding: weddingId is required');
  if (req.dryRun && req.mode !== 'merge')
    throw refuse('dryRun', 'a dry run counts what a merge would insert: use mode merge');
  if (req.targetDatabase !== undefined) {
    let ok = false;
    try {
      const u = new URL(req.targetDatabase);
      ok = (u.protocol === 'postgres:' || u.protocol === 'postgresql:') && u.pathname.length > 1;
    } catch {
      ok = false;
    }
    if (!ok) throw refuse('targetDatabase', 'a postgres:// connection URL naming a database');
  }
  if (req.targetTime !== undefined && Number.isNaN(Date.parse(req.targetTime)))
    throw refuse('targetTime', 'an ISO 8601 time');
}

/** The target time must lie in the recoverable window of some copy: the window is named when not. */
async function checkWindow(ctx: AppContext, time: string, now: Date): Promise<void> {
  const copies = ctx.config.targets.map((t) => ({ target: t.name, storage: ctx.storage(t.name) }));
  const w = overallWindow(await copyWindows(copies, ctx.config.masterKey, PITR_SOURCE));
  const window = { earliest: w.earliest ?? null, latest: w.latest ?? now.toISOString() };
  const named = `the recoverable window is ${window.earliest ?? '(nothing yet: no base point)'} to ${window.latest}`;
  const at = Date.parse(time);
  if (at > now.getTime()) throw refuse('targetTime', `${time} is in the future; ${named}`, { window });
  if (!w.earliest || at < Date.parse(w.earliest))
    throw refuse('targetTime', `${time} is before the earliest recoverable point; ${named}`, { window });
}

/**
 * `inline`: the row only, no job: the caller (the CLI) runs the payload itself, so a service's
 * worker never picks the same recovery up.
 */
export async function requestRecovery(
  ctx: AppContext,
  req: RecoveryRequest,
  now = new Date(),
  opts: { inline?: boolean } = {},
): Promise<{ recoveryId: string; payload: RestorePayload }> {
  checkRecoveryRequest(req);
  let lsn = req.targetLsn;
  if (req.restorePoint !== undefined) {
    const rp = await getRestorePoint(ctx.db, req.restorePoint);
    if (!rp) throw refuse('restorePoint', `no restore point named ${req.restorePoint}`);
    lsn = rp.lsn;
  }
  if (req.targetTime !== undefined) await checkWindow(ctx, req.targetTime, now);
  const recoveryId = randomUUID();
  const mode = req.mode ?? 'new';
  const data: RestorePayload = {
    recoveryId,
    recoveryPointId: req.recoveryPointId,
    targetDatabase: req.targetDatabase,
    weddingId: req.weddingId,
    ...((req.targetTime ?? lsn) !== undefined && {
      target: { time: req.targetTime, lsn, inclusive: req.inclusive },
    }),
    mode,
    dryRun: req.dryRun,
    components: req.components,
    targets: req.targets,
    drillId: req.drillId,
    staged: req.staged,
  };
  // the row commits only once Redis took the job: a request that fails on Redis leaves no row
  await transaction(ctx.db, async (client) => {
    await createRecovery(client, { id: recoveryId, ...req, targetLsn: lsn, mode });
    if (opts.inline) return;
    await onRequestPath(ctx.queues, (q) =>
      q[QUEUES.restore].add(JOBS.restore, data, {
        jobId: `recovery.${recoveryId}`,
        priority: PRIORITY.week,
        attempts: 1,
      }),
    );
  });
  return { recoveryId, payload: data };
}
