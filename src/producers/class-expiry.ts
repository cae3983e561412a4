/**
 * Retention by data class carried out: each wedding × class whose `wedding + X` has passed, not
 * under a legal hold and not done yet, has its class scope erased on every target (the class's key
 * destroyed: no point on any copy yields those rows or files again), recorded in the catalog like
 * an erasure (reason and requester `retention`). Used by the purge worker, `wedvault forget` and
 * GET /api/compliance/retention (the 30-day preview).
 */
import { randomUUID } from 'node:crypto';
import { createErasure, listErasures, updateErasure } from '../catalog/erasures.js';
import { listActiveHolds } from '../catalog/holds.js';
import { listRetentionRows } from '../catalog/forget.js';
import { tenantsOfPoint } from '../engine/classes.js';
import { weddingsOfPoints } from '../engine/forget.js';
import type { DataClass } from '../config/index.js';
import { quoteName } from '../config/identifier.js';
import { TransientError, errorMessage } from '../errors.js';
import { carryOutErasure } from './erasure.js';
import {
  classExpiries,
  judgeExpiries,
  type ClassExpiry,
  type ExpiryVerdict,
} from '../policy/class-expiry.js';
import type { RetentionContext } from './retention.js';

export const RETENTION_REQUESTER = 'retention';
const DAY_MS = 86_400_000;

const copiesOf = (ctx: RetentionContext) =>
  ctx.config.targets.map((t) => ({ target: t.name, storage: ctx.storage(t.name) }));

/** Every wedding × class expiry, from the newest database point's weddings and ceremony dates. */
async function allExpiries(ctx: RetentionContext): Promise<ClassExpiry[]> {
  const classes = (ctx.config.retention.classes ?? []).filter((c) => c.keep.from === 'wedding');
  if (classes.length === 0) return [];
  const rows = await listRetentionRows(ctx.db);
  const holdsDatabase = (r: (typeof rows)[number]) =>
    r.components?.length ? r.components.includes('database') : r.type !== 'files';
  const newest = rows.find(holdsDatabase);
  if (!newest) return [];
  const tenants = await tenantsOfPoint(copiesOf(ctx), ctx.config.masterKey, newest.id);
  return classExpiries(classes, tenants ?? []);
}

/** Each expiry with its fate at `now` (see judgeExpiries). */
export async function planClassExpiries(ctx: RetentionContext, now = new Date()): Promise<ExpiryVerdict[]> {
  return (await plan(ctx, now)).verdicts;
}

interface Plan {
  verdicts: ExpiryVerdict[];
  /** The weddings of the points holds named when planning. */
  pointWeddings: Map<string, string[] | undefined>;
}

async function plan(ctx: RetentionContext, now: Date): Promise<Plan> {
  const expiries = await allExpiries(ctx);
  if (expiries.length === 0) return { verdicts: [], pointWeddings: new Map() };
  const [holds, erasures] = await Promise.all([listActiveHolds(ctx.db, now), listErasures(ctx.db)]);
  const pointIds = holds.flatMap((h) => (h.recoveryPointId ? [h.recoveryPointId] : []));
  const pointWeddings =
    pointIds.length > 0
      ? await weddingsOfPoints(copiesOf(ctx), ctx.config.masterKey, pointIds)
      : new Map<string, string[] | undefined>();
  // a class expiry not completed (killed half way) is done again: erasing is idempotent
  const erased = new Set(
    erasures
      .filter((e) => e.status === 'completed' || e.requestedBy !== RETENTION_REQUESTER)
      .map((e) => e.scope),
  );
  return { verdicts: judgeExpiries(expiries, { now, holds, pointWeddings, erased }), pointWeddings };
}

/** A hold placed since the plan blocks the expiry still (a point it names unknown then: taken to hold it). */
async function heldSincePlan(ctx: RetentionContext, v: ExpiryVerdict, now: Date, p: Plan) {
  const holds = await listActiveHolds(ctx.db, now);
  const [again] = judgeExpiries([v], { now, holds, pointWeddings: p.pointWeddings, erased: new Set() });
  return again?.action === 'held' ? again : undefined;
}

/** The class expiries of the next `days` days (and any overdue), as the preview shows them. */
export async function previewClassExpiries(
  ctx: RetentionContext,
  now = new Date(),
  days = 30,
): Promise<
  { weddingId: string; dataClass: string; scope: string; expiresAt: Date; rule: string; heldBy?: string }[]
> {
  const until = new Date(now.getTime() + days * DAY_MS);
  return (await planClassExpiries(ctx, now))
    .filter((v) => v.action !== 'done' && v.expiresAt <= until)
    .map(({ weddingId, dataClass, scope, expiresAt, rule, hold }) => ({
      weddingId,
      dataClass,
      scope,
      expiresAt,
      rule,
      ...(hold ? { heldBy: hold.id } : {}),
    }));
}

export interface ClassExpiryRun {
  verdicts: ExpiryVerdict[];
  /** Erasure ids of the class scopes erased on every target by this run. */
  expired: { scope: string; erasureId: string }[];
}

/** One class scope erased on every target and certified; the catalog row says how far it got. */
async function expireOne(ctx: RetentionContext, v: ExpiryVerdict, waitMs: number): Promise<string> {
  const { erasure } = await createErasure(ctx.db, {
    id: randomUUID(),
    scope: v.scope,
    reason: RETENTION_REQUESTER,
    requestedBy: RETENTION_REQUESTER,
  });
  const req = {
    erasureId: erasure.erasureId,
    scope: v.scope,
    reason: `retention: ${v.dataClass} ${v.rule} passed on ${v.expiresAt.toISOString().slice(0, 10)}`,
    requestedBy: RETENTION_REQUESTER,
    requestedAt: erasure.createdAt.toISOString(),
  };
  try {
    await carryOutErasure(ctx, req, { waitMs });
    return erasure.erasureId;
  } catch (err) {
    await updateErasure(ctx.db, erasure.erasureId, { status: 'failed', error: errorMessage(err) });
    throw err;
  }
}

/**
 * Expires what is due. A failure on one scope does not stop the others; the run then throws a
 * TransientError after doing all it could, and the next purge tries the failed ones again.
 * `waitMs`: how long each target's erasure waits for running backups and replications.
 */
export async function runClassExpiries(
  ctx: RetentionContext,
  opts: { dryRun?: boolean; now?: Date; waitMs?: number } = {},
): Promise<ClassExpiryRun> {
  const now = opts.now ?? new Date();
  const p = await plan(ctx, now);
  const verdicts = p.verdicts;
  if (opts.dryRun) return { verdicts, expired: [] };
  const expired: ClassExpiryRun['expired'] = [];
  const failures: string[] = [];
  for (const [i, v] of verdicts.entries()) {
    if (v.action !== 'expire') continue;
    try {
      const held = await heldSincePlan(ctx, v, now, p);
      if (held) verdicts[i] = held;
      else expired.push({ scope: v.scope, erasureId: await expireOne(ctx, v, opts.waitMs ?? 0) });
    } catch (err) {
      failures.push(`${v.scope}: ${errorMessage(err)}`);
    }
  }
  if (failures.length > 0)
    throw new TransientError(`class expiries failed: ${failures.join('; ')}`, {
      details: { expired, failures },
    });
  return { verdicts, expired };
}

/** The classes as the config writes them, for answers and printouts. */
export function classesForDisplay(
  classes: readonly DataClass[],
): Record<string, { tables: string[]; files: string[]; keep: string }> {
  return Object.fromEntries(
    classes.map((c) => [
      c.name,
      {
        tables: c.tables.map((t) =>
          [t.schema, t.table]
            .filter((x) => x !== undefined)
            .map(quoteName)
            .join('.'),
        ),
        files: [...c.files],
        keep: c.keep.text,
      },
    ]),
  );
}
