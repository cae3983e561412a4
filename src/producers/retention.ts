/**
 * Retention applied: the catalog's points and holds through the policy (policy/retention.ts), the
 * forget that follows (catalog first, then every target's snapshot) and the 30-day preview. Used by
 * the purge worker, `wedvault forget` and GET /api/compliance/retention.
 */
import { listActiveHolds, type LegalHold } from '../catalog/holds.js';
import {
  listForgottenWithSnapshots,
  listRetentionRows,
  markForgotten,
  markSnapshotsRemoved,
  type RetentionRow,
} from '../catalog/forget.js';
import type { Db } from '../catalog/db.js';
import type { Config } from '../config/index.js';
import { dropOldSegments, removeSnapshot, weddingsOfPoints, type Copy } from '../engine/forget.js';
import { TransientError } from '../errors.js';
import type { Storage } from '../storage/types.js';
import {
  policyForDisplay,
  selectRetention,
  type RetentionPoint,
  type RetentionSource,
  type RetentionVerdict,
} from '../policy/retention.js';
import { PITR_SOURCE } from '../engine/pitr/types.js';

/** What retention needs of a process: the service's context or the CLI's own. */
export interface RetentionContext {
  config: Config;
  db: Db;
  storage(name: string): Storage;
}

const DAY_MS = 86_400_000;

function sourcesOf(row: RetentionRow): RetentionSource[] {
  if (row.components && row.components.length > 0) return row.components as RetentionSource[];
  return row.type === 'files' ? ['files'] : ['database', 'files'];
}

const copiesOf = (ctx: RetentionContext): Copy[] =>
  ctx.config.targets.map((t) => ({ target: t.name, storage: ctx.storage(t.name) }));

const PINNED_FOR_SLOT = 'newest database point: the next incremental reads its change slot';

/**
 * With change slots on, the next incremental starts from the newest database point's slot; forget
 * it and that slot is never dropped (the source keeps WAL for it) while the next backup finds none.
 */
function newestDatabasePoint(rows: RetentionRow[]): string | undefined {
  return rows.find((r) => r.type !== 'files' && sourcesOf(r).includes('database'))?.id;
}

interface Inputs {
  rows: RetentionRow[];
  holds: LegalHold[];
}

/**
 * The verdicts at each of `times`. Wedding holds need the weddings of a point, read from its tree:
 * only the points the rules alone would forget at some time are read, since a hold can only keep
 * more (and a kept point's parents are then kept by the second pass).
 */
async function verdictsAt(
  ctx: RetentionContext,
  { rows, holds }: Inputs,
  times: Date[],
): Promise<RetentionVerdict[][]> {
  const slotHolder = ctx.config.sources.postgres.changeSlot ? newestDatabasePoint(rows) : undefined;
  const points: RetentionPoint[] = rows.map((r) => ({
    id: r.id,
    time: r.createdAt,
    type: r.type,
    sources: sourcesOf(r),
    // An incremental is kept with its parent chain. A files point's parent only told its backup
    // which files were unchanged: the point names every blob it needs and stands alone.
    parent: r.type === 'incremental' ? r.parent : undefined,
    weddings: r.weddingId ? [r.weddingId] : [],
    pinned: r.id === slotHolder ? PINNED_FOR_SLOT : undefined,
  }));
  const select = (now: Date, pts: RetentionPoint[], hs: LegalHold[]) =>
    selectRetention({ points: pts, policy: ctx.config.retention, holds: hs, now });
  const weddingHolds = holds.some((h) => h.weddingId !== null);
  if (!weddingHolds) return times.map((now) => select(now, points, holds));

  const pointHolds = holds.filter((h) => h.weddingId === null);
  const candidates = new Set(
    times.flatMap((now) =>
      select(now, points, pointHolds)
        .filter((v) => v.action === 'forget')
        .map((v) => v.id),
    ),
  );
  const weddings = await weddingsOfPoints(copiesOf(ctx), ctx.config.masterKey, [...candidates]);
  const known = points.map((p) => {
    if (!candidates.has(p.id)) return p;
    const read = weddings.get(p.id);
    return { ...p, weddings: read && [...new Set([...read, ...(p.weddings ?? [])])] };
  });
  return times.map((now) => select(now, known, holds));
}

async function inputs(db: Db): Promise<Inputs> {
  const [rows, holds] = await Promise.all([listRetentionRows(db), listActiveHolds(db)]);
  return { rows, holds };
}

const sameHolds = (a: LegalHold[], b: LegalHold[]) => a.map((h) => h.id).join() === b.map((h) => h.id).join();

/**
 * Every point not yet forgotten, with keep or forget and the reasons, newest first. Plans again
 * while holds changed during the plan (reading trees takes a while), so a hold placed meanwhile is
 * not missed; the catalog's mark also skips points a hold names directly.
 */
export async function planForget(ctx: RetentionContext, now = new Date()): Promise<RetentionVerdict[]> {
  let data = await inputs(ctx.db);
  for (;;) {
    const [verdicts] = await verdictsAt(ctx, data, [now]);
    const holds = await listActiveHolds(ctx.db);
    if (sameHolds(holds, data.holds)) return verdicts!;
    data = { ...data, holds };
  }
}

export interface ForgetResult {
  verdicts: RetentionVerdict[];
  /** Points this run marked forgotten. */
  forgotten: string[];
  /** Points whose snapshots left every target in this run (this run's and earlier runs' leftovers). */
  snapshotsRemoved: string[];
}

/**
 * Forgets what the policy lets go: the catalog rows first (nothing lists, restores, replicates or
 * verifies them from then on), then the snapshot on every target. A target that fails keeps the
 * point in the to-remove list, and the next run tries again; a run with failures throws a
 * TransientError after it did all it could, so the job is retried.
 */
export async function runForget(
  ctx: RetentionContext,
  opts: { dryRun?: boolean; now?: Date } = {},
): Promise<ForgetResult> {
  const verdicts = await planForget(ctx, opts.now);
  if (opts.dryRun) return { verdicts, forgotten: [], snapshotsRemoved: [] };
  const forgotten = await markForgotten(
    ctx.db,
    verdicts.filter((v) => v.action === 'forget').map((v) => ({ id: v.id, reason: v.reasons.join('; ') })),
  );
  const snapshotsRemoved: string[] = [];
  const failures: string[] = [];
  for (const point of await listForgottenWithSnapshots(ctx.db)) {
    const results = await removeSnapshot(copiesOf(ctx), point.id);
    const failed = results.filter((r) => r.error);
    if (failed.length === 0) {
      await markSnapshotsRemoved(ctx.db, point.id);
      snapshotsRemoved.push(point.id);
    } else failures.push(...failed.map((f) => `${point.id} on ${f.target}: ${f.error}`));
  }
  // change segments older than every base point still kept can no longer be replayed onto anything
  if (snapshotsRemoved.length > 0) {
    for (const r of await dropOldSegments(copiesOf(ctx), ctx.config.masterKey, PITR_SOURCE))
      if (r.error) failures.push(`change segments on ${r.target}: ${r.error}`);
  }
  if (failures.length > 0) {
    throw new TransientError(`forget left snapshots behind: ${failures.join('; ')}`, {
      details: { forgotten, snapshotsRemoved, failures },
    });
  }
  return { verdicts, forgotten, snapshotsRemoved };
}

export interface RetentionPreview {
  /** As the config file writes it; {} when nothing expires. */
  policy: ReturnType<typeof policyForDisplay>;
  holds: LegalHold[];
  /** From today on: the points a purge on that day would forget that it would not have forgotten the day before. */
  expiries: { date: string; points: { id: string; time: Date; reasons: string[] }[] }[];
}

/** The selection run at now and at each of the next `days` days. */
export async function previewRetention(
  ctx: RetentionContext,
  now = new Date(),
  days = 30,
): Promise<RetentionPreview> {
  const data = await inputs(ctx.db);
  const times = Array.from({ length: days + 1 }, (_, d) => new Date(now.getTime() + d * DAY_MS));
  const runs = await verdictsAt(ctx, data, times);
  const seen = new Set<string>();
  const expiries: RetentionPreview['expiries'] = [];
  runs.forEach((verdicts, d) => {
    const fresh = verdicts.filter((v) => v.action === 'forget' && !seen.has(v.id));
    for (const v of fresh) seen.add(v.id);
    if (fresh.length === 0) return;
    expiries.push({
      date: times[d]!.toISOString(),
      points: fresh.map(({ id, time, reasons }) => ({ id, time, reasons })),
    });
  });
  return { policy: policyForDisplay(ctx.config.retention), holds: data.holds, expiries };
}
