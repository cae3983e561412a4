/** Read models of the wedding-aware schedules: one wedding's protection, and a preview of the days ahead. */
import { getNextMillis } from 'bullmq';
import { indexNewest, newestPoints } from '../catalog/cadence.js';
import { listSchedules } from '../catalog/schedules.js';
import { newestSegmentAt } from '../queues/capture-status.js';
import type { AppContext } from '../context.js';
import { NotFoundError } from '../errors.js';
import { cadenceCache, cadenceFor, components, nextDue, rpoMissAt, type Cadence } from '../policy/cadence.js';
import { heavyKindOf, mayRunHeavy } from '../policy/windows.js';
import { QUEUES, jobIds } from '../queues/names.js';
import { WEDDING_TIERS, type WeddingTier } from '../queues/priority.js';
import { localDate } from '../queues/priority.js';
import { effectiveScheduling, sourceWeddings } from './cadence.js';
import { specOfRow } from './schedules.js';

/**
 * Hook for continuous capture: the newest sealed change segment's time for a wedding (undefined
 * when capture is off or has none). Capture is built elsewhere; nothing here supplies it.
 */
export type NewestSegment = (weddingId: string) => Promise<Date | undefined>;

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);
const seconds = (ms: number) => Math.round(ms / 1000);

function cadenceJson(c: Cadence) {
  return {
    region: c.region,
    inSeason: c.inSeason,
    peakDay: c.peakDay,
    factor: c.factor,
    daysToCeremony: c.daysToCeremony,
    rpoSeconds: seconds(c.rpoMs),
    filesEverySeconds: seconds(c.filesEveryMs),
    databaseEverySeconds: seconds(c.databaseEveryMs),
    databaseContinuous: c.databaseContinuous,
  };
}

/** GET /api/weddings/:id/protection. NotFound when the source does not know the wedding. */
export async function weddingProtection(
  ctx: AppContext,
  weddingId: string,
  now = new Date(),
  newestSegment?: NewestSegment,
) {
  const [w] = await sourceWeddings(ctx, [weddingId]);
  if (!w)
    throw new NotFoundError(`wedding ${weddingId} is not in the source database`, {
      details: { field: 'id' },
    });
  const c = cadenceFor(w, now, await effectiveScheduling(ctx));
  const newest = indexNewest(await newestPoints(ctx.db, [weddingId]));
  const capture = ctx.config.sources.postgres.pitr.enabled;
  const wanted = components(c, capture);
  const segmentOf = newestSegment ?? (() => newestSegmentAt(ctx.queues.connection, ctx.queues.prefix));
  const segment = capture ? await segmentOf(weddingId) : undefined;
  const good = {
    database: newest(weddingId, 'database')?.newestVerified ?? null,
    files: newest(weddingId, 'files')?.newestVerified ?? null,
  };
  // the database is covered by the newer of its verified point and its newest change segment
  const covered = {
    database: segment && (!good.database || segment > good.database) ? segment : good.database,
    files: good.files,
  };
  const oldest = (['database', 'files'] as const)
    .map((k) => covered[k])
    .reduce<Date | null | undefined>(
      (a, b) => (a === undefined ? b : !a || !b ? null : a < b ? a : b),
      undefined,
    );
  const queue = ctx.queues.queues[QUEUES.backup];
  const next = await Promise.all(
    wanted.map(async (component) => {
      const waiting = await queue.getDeduplicationJobId(jobIds.weddingBackup(weddingId, component));
      const at = nextDue(c, component, newest(weddingId, component)?.newest, now);
      return { component, at: iso(at), jobId: waiting ?? null, state: waiting ? 'queued' : 'scheduled' };
    }),
  );
  next.sort((a, b) => (a.at ?? '').localeCompare(b.at ?? ''));
  const rpoMs = oldest ? now.getTime() - oldest.getTime() : null;
  return {
    weddingId,
    ceremonyDate: w.ceremonyDate ?? null,
    timeZone: w.timeZone,
    tier: c.tier,
    cadence: cadenceJson(c),
    newestGoodPoint: {
      at: iso(oldest),
      database: iso(good.database),
      files: iso(good.files),
      changeSegment: iso(segment),
    },
    rpoNow: {
      seconds: rpoMs === null ? null : seconds(rpoMs),
      targetSeconds: seconds(c.rpoMs),
      met: rpoMs !== null && rpoMs <= c.rpoMs,
    },
    nextJob: next[0] ?? null,
    nextJobs: next,
  };
}

const DAY = 86_400_000;

/** GET /api/schedules/preview?days=N: per day and tier, weddings and backups due; the fixed schedules' runs. */
export async function previewSchedules(ctx: AppContext, days: number, now = new Date()) {
  const cfg = await effectiveScheduling(ctx);
  const weddings = await sourceWeddings(ctx);
  const capture = ctx.config.sources.postgres.pitr.enabled;
  const rows = new Map<
    string,
    { date: string; tier: string; weddings: number; database: number; files: number }
  >();
  for (let d = 0; d < days; d++) {
    // each day's cadence is read at its middle: tiers and factors change at local midnights
    const cadence = cadenceCache(new Date(now.getTime() + d * DAY + DAY / 2), cfg);
    const date = localDate(new Date(now.getTime() + d * DAY), 'UTC');
    for (const w of weddings) {
      const c = cadence(w);
      const key = `${date}|${c.tier}`;
      let row = rows.get(key);
      if (!row) rows.set(key, (row = { date, tier: c.tier, weddings: 0, database: 0, files: 0 }));
      row.weddings++;
      for (const comp of components(c, capture))
        row[comp] += Math.ceil(DAY / (comp === 'files' ? c.filesEveryMs : c.databaseEveryMs));
    }
  }
  const until = now.getTime() + days * DAY;
  const schedules = (await listSchedules(ctx.db))
    .filter((s) => s.enabled)
    .map((row) => {
      const s = specOfRow(row);
      const runs: { at: string; heldUntil?: string }[] = [];
      for (let t = now.getTime(); runs.length < 500;) {
        const next = s.pattern ? getNextMillis(t, { pattern: s.pattern, tz: s.tz }) : t + (s.every ?? DAY);
        if (next === undefined || next > until) break;
        t = next;
        const kind = heavyKindOf(s.queue, s.data);
        const v = kind ? mayRunHeavy({ kind, source: 'database', now: new Date(t) }, cfg) : undefined;
        runs.push(
          v?.retryAt
            ? { at: new Date(t).toISOString(), heldUntil: v.retryAt.toISOString() }
            : { at: new Date(t).toISOString() },
        );
      }
      return {
        id: s.id,
        queue: s.queue,
        pattern: s.pattern ?? null,
        every: s.every ?? null,
        tz: s.tz ?? null,
        runs,
      };
    });
  return { from: now.toISOString(), days, weddings: weddings.length, tiers: [...rows.values()], schedules };
}

export interface TierSla {
  tier: WeddingTier;
  weddings: number;
  rpoSeconds: number;
  /** Age of the oldest "newest verified point" among the tier's weddings that have one. */
  newestVerifiedAgeSeconds: number | null;
  /** Where capture covers the tier: age of the oldest "newest change segment" (from the hook). */
  changeSegmentAgeSeconds: number | null;
  /** Weddings past the RPO, or with no verified point at all. */
  breached: number;
}

/**
 * Per tier, how old each wedding's newest verified point is against the tier's RPO (a wedding's age is
 * its older component's). The SLA monitor alerts on it and /metrics shows it.
 */
export async function measureSla(
  ctx: AppContext,
  now = new Date(),
  newestSegment?: NewestSegment,
): Promise<TierSla[]> {
  const cfg = await effectiveScheduling(ctx);
  const weddings = await sourceWeddings(ctx);
  const newest = indexNewest(await newestPoints(ctx.db));
  const capture = ctx.config.sources.postgres.pitr.enabled;
  const cadence = cadenceCache(now, cfg);
  // the capture's newest segment covers every wedding: read once
  const sealed =
    capture && !newestSegment ? await newestSegmentAt(ctx.queues.connection, ctx.queues.prefix) : undefined;
  newestSegment ??= () => Promise.resolve(sealed);
  const out = new Map<WeddingTier, TierSla>(
    WEDDING_TIERS.map((tier) => [
      tier,
      {
        tier,
        weddings: 0,
        rpoSeconds: cfg.tiers[tier].rpoMinutes * 60,
        newestVerifiedAgeSeconds: null,
        changeSegmentAgeSeconds: null,
        breached: 0,
      },
    ]),
  );
  for (const w of weddings) {
    const c = cadence(w);
    const t = out.get(c.tier)!;
    t.weddings++;
    let oldest: number | undefined = Infinity;
    for (const comp of components(c, capture)) {
      const at = newest(w.id, comp)?.newestVerified?.getTime();
      oldest = at === undefined ? undefined : oldest === undefined ? undefined : Math.min(oldest, at);
    }
    if (capture && c.databaseContinuous && newestSegment) {
      const seg = await newestSegment(w.id);
      const age = seg ? seconds(now.getTime() - seg.getTime()) : null;
      if (age !== null) t.changeSegmentAgeSeconds = Math.max(t.changeSegmentAgeSeconds ?? 0, age);
    }
    if (oldest === undefined || oldest === Infinity) {
      t.breached++;
      continue;
    }
    const age = seconds(now.getTime() - oldest);
    t.newestVerifiedAgeSeconds = Math.max(t.newestVerifiedAgeSeconds ?? 0, age);
    if (age > t.rpoSeconds) t.breached++;
  }
  return [...out.values()];
}

/**
 * The first moment a wedding's database RPO is missed if no new database point is taken (its newest
 * point, whole-source points included, plus its tier's RPO), and whose; undefined without weddings.
 */
export async function earliestDatabaseRpoMiss(
  ctx: AppContext,
  now = new Date(),
): Promise<{ at: Date; weddingId: string } | undefined> {
  const cfg = await effectiveScheduling(ctx);
  const newest = indexNewest(await newestPoints(ctx.db));
  const cadence = cadenceCache(now, cfg);
  let first: { at: Date; weddingId: string } | undefined;
  for (const w of await sourceWeddings(ctx)) {
    const at = rpoMissAt(cadence(w), newest(w.id, 'database')?.newest, now);
    if (!first || at < first.at) first = { at, weddingId: w.id };
  }
  return first;
}
