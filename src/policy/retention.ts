/**
 * Which recovery points a purge keeps and which it forgets, and why: GFS rules per source and backup
 * type (restic's forget semantics), legal holds, and the parents kept points need. Pure: no clock.
 */
import type { Duration, GfsPolicy, RetentionConfig } from '../config/index.js';

export type RetentionSource = 'database' | 'files';

export interface RetentionPoint {
  id: string;
  time: Date;
  /** The backup type: full, incremental or files. */
  type: string;
  /** The sources the point holds; each source's policy for the type has a say. */
  sources: readonly RetentionSource[];
  /** The point this one was taken against; kept as long as this one is. */
  parent?: string | null | undefined;
  /** The weddings the point holds; undefined when not known (any wedding hold then keeps it). */
  weddings?: readonly string[] | undefined;
  /** Kept whatever the rules say, for this reason (the caller knows something the rules do not). */
  pinned?: string | undefined;
}

export interface RetentionHold {
  id: string;
  weddingId: string | null;
  recoveryPointId: string | null;
  reason: string;
  /** The hold lapses at this time; null: until released. */
  until: Date | null;
}

export interface RetentionVerdict {
  id: string;
  time: Date;
  action: 'keep' | 'forget';
  /** Every rule that kept the point, or why none did. */
  reasons: string[];
}

export interface SelectionInput {
  points: readonly RetentionPoint[];
  policy: RetentionConfig;
  holds: readonly RetentionHold[];
  now: Date;
}

type Bucket = (t: Date) => number;

const hourOf: Bucket = (t) =>
  t.getUTCFullYear() * 1e6 + (t.getUTCMonth() + 1) * 1e4 + t.getUTCDate() * 100 + t.getUTCHours();
const dayOf: Bucket = (t) => t.getUTCFullYear() * 1e4 + (t.getUTCMonth() + 1) * 100 + t.getUTCDate();
const monthOf: Bucket = (t) => t.getUTCFullYear() * 100 + t.getUTCMonth() + 1;
const yearOf: Bucket = (t) => t.getUTCFullYear();

/** ISO 8601 week (Monday first; week 1 holds the year's first Thursday), as YYYYWW. */
const weekOf: Bucket = (t) => {
  const d = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate()));
  const weekday = d.getUTCDay() || 7;
  d.setUTCDate(d.getUTCDate() + 4 - weekday); // the Thursday of this week decides its year
  const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1);
  return d.getUTCFullYear() * 100 + Math.ceil(((d.getTime() - yearStart) / 86_400_000 + 1) / 7);
};

const RULES: { key: keyof GfsPolicy; name: string; bucket: (t: Date, nr: number) => number }[] = [
  { key: 'keepLast', name: 'last', bucket: (_t, nr) => nr },
  { key: 'keepHourly', name: 'hourly', bucket: hourOf },
  { key: 'keepDaily', name: 'daily', bucket: dayOf },
  { key: 'keepWeekly', name: 'weekly', bucket: weekOf },
  { key: 'keepMonthly', name: 'monthly', bucket: monthOf },
  { key: 'keepYearly', name: 'yearly', bucket: yearOf },
];

export function formatDuration(d: Duration): string {
  const parts = [
    [d.years, 'y'],
    [d.months, 'm'],
    [d.days, 'd'],
    [d.hours, 'h'],
  ] as const;
  return parts.map(([n, u]) => (n ? `${n}${u}` : '')).join('') || '0h';
}

/** `now` less the duration, in calendar terms (a month back from 31 March is 3 March, as Date does). */
export function before(now: Date, d: Duration): Date {
  const t = new Date(now);
  t.setUTCFullYear(t.getUTCFullYear() - d.years, t.getUTCMonth() - d.months, t.getUTCDate() - d.days);
  t.setUTCHours(t.getUTCHours() - d.hours);
  return t;
}

/** The policy as the config file writes it (durations as `30d`), for answers and printouts. */
export function policyForDisplay(
  policy: RetentionConfig,
): Record<string, Record<string, Record<string, unknown>>> {
  const out: Record<string, Record<string, Record<string, unknown>>> = {};
  // data classes expire tenants' keys, not points: shown beside this (producers/class-expiry.ts)
  const { classes: _classes, ...gfs } = policy;
  for (const [source, types] of Object.entries(gfs)) {
    for (const [type, rules] of Object.entries((types ?? {}) as Record<string, GfsPolicy | undefined>)) {
      if (!rules) continue;
      const shown = { ...rules, ...(rules.keepWithin && { keepWithin: formatDuration(rules.keepWithin) }) };
      (out[source] ??= {})[type] = shown;
    }
  }
  return out;
}

/** One policy's description for messages: `keepLast 3, keepDaily 7, keepWithin 30d`. */
export function describePolicy(p: GfsPolicy): string {
  return Object.entries(p)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k} ${typeof v === 'object' ? formatDuration(v) : String(v)}`)
    .join(', ');
}

/**
 * restic's rule: newest first, a bucket rule keeps the newest point of each bucket (hour, day, …)
 * while its count lasts, and the oldest point of all if a count is left then. keepWithin keeps
 * every point newer than `now` less the duration (restic measures from the newest point instead; a
 * service that stopped backing up then keeps everything, but the 30-day preview could show nothing).
 */
export function applyGfs(
  newestFirst: readonly { id: string; time: Date }[],
  policy: GfsPolicy,
  now: Date,
): Map<string, string[]> {
  const kept = new Map<string, string[]>();
  const keep = (id: string, why: string) => kept.set(id, [...(kept.get(id) ?? []), why]);
  const state = RULES.map((r) => ({ ...r, count: policy[r.key] as number | undefined, last: NaN }));
  const within = policy.keepWithin && before(now, policy.keepWithin);
  newestFirst.forEach((point, nr) => {
    if (within && point.time > within) keep(point.id, `within ${formatDuration(policy.keepWithin!)}`);
    const oldest = nr === newestFirst.length - 1;
    for (const rule of state) {
      if (!rule.count) continue;
      const value = rule.bucket(point.time, nr);
      if (value === rule.last && !oldest) continue;
      keep(point.id, value === rule.last ? `oldest ${rule.name}` : rule.name);
      rule.last = value;
      rule.count--;
    }
  });
  return kept;
}

const policyFor = (policy: RetentionConfig, source: RetentionSource, type: string): GfsPolicy | undefined =>
  (policy[source] as Record<string, GfsPolicy | undefined> | undefined)?.[type];

function holdReasons(point: RetentionPoint, holds: readonly RetentionHold[]): string[] {
  const reasons: string[] = [];
  for (const h of holds) {
    if (h.recoveryPointId === point.id) reasons.push(`held by hold ${h.id} (this point): ${h.reason}`);
    else if (h.weddingId !== null && point.weddings?.includes(h.weddingId))
      reasons.push(`held by hold ${h.id} (wedding ${h.weddingId}): ${h.reason}`);
    else if (h.weddingId !== null && point.weddings === undefined)
      reasons.push(`held by hold ${h.id} (wedding ${h.weddingId}; this point's weddings are not known)`);
  }
  return reasons;
}

export function selectRetention({ points, policy, holds, now }: SelectionInput): RetentionVerdict[] {
  const active = holds.filter((h) => h.until === null || h.until > now);
  const sorted = [...points].sort((a, b) => b.time.getTime() - a.time.getTime() || (a.id < b.id ? 1 : -1));
  const past = sorted.filter((p) => p.time <= now);
  const kept = new Map<string, string[]>();
  const dropped = new Map<string, string[]>();
  const add = (m: Map<string, string[]>, id: string, why: string[]) =>
    m.set(id, [...(m.get(id) ?? []), ...why]);

  for (const source of ['database', 'files'] as const) {
    for (const type of new Set(past.map((p) => p.type))) {
      const members = past.filter((p) => p.type === type && p.sources.includes(source));
      if (members.length === 0) continue;
      const rules = policyFor(policy, source, type);
      if (!rules) {
        for (const p of members) add(kept, p.id, [`no policy for ${source}/${type}`]);
        continue;
      }
      const byRule = applyGfs(members, rules, now);
      for (const p of members) {
        const why = byRule.get(p.id);
        if (why)
          add(
            kept,
            p.id,
            why.map((w) => `${source}/${type}: ${w}`),
          );
        else add(dropped, p.id, [`${source}/${type}: no rule keeps it (${describePolicy(rules)})`]);
      }
    }
  }
  for (const p of sorted) {
    if (p.time > now) add(kept, p.id, ['taken after now']);
    else if (p.sources.length === 0) add(kept, p.id, ['holds no known source']);
    if (p.pinned) add(kept, p.id, [p.pinned]);
    const held = holdReasons(p, active);
    if (held.length) add(kept, p.id, held);
  }
  keepParents(sorted, kept);
  return sorted.map((p) =>
    kept.has(p.id)
      ? { id: p.id, time: p.time, action: 'keep', reasons: kept.get(p.id)! }
      : { id: p.id, time: p.time, action: 'forget', reasons: dropped.get(p.id) ?? [] },
  );
}

/** A kept point's parent chain is kept too, each link naming the point that needs it. */
function keepParents(points: readonly RetentionPoint[], kept: Map<string, string[]>): void {
  const byId = new Map(points.map((p) => [p.id, p]));
  const queue = points.filter((p) => kept.has(p.id));
  while (queue.length) {
    const child = queue.pop()!;
    const parent = child.parent ? byId.get(child.parent) : undefined;
    if (!parent) continue;
    const why = `parent of ${child.id}`;
    if (!kept.has(parent.id)) queue.push(parent);
    kept.set(parent.id, [...(kept.get(parent.id) ?? []), why]);
  }
}
