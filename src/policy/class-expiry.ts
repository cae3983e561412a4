/**
 * When each wedding's data classes expire (`wedding + 90d`: ninety days after its ceremony date),
 * and which of those a purge at `now` may carry out: not under a legal hold, not done already.
 * Pure: no clock, no catalog.
 */
import type { DataClass, Duration } from '../config/index.js';
import { classScope, isErased, weddingScope } from '../engine/api.js';

export interface ClassExpiry {
  weddingId: string;
  dataClass: string;
  /** The key scope destroyed: `wedding:<id>/<class>`. */
  scope: string;
  expiresAt: Date;
  /** The rule as the config writes it, e.g. `wedding + 90d`. */
  rule: string;
}

/** `t` plus the duration, in calendar terms (the inverse of policy/retention.ts `before`). */
export function after(t: Date, d: Duration): Date {
  const out = new Date(t);
  out.setUTCFullYear(out.getUTCFullYear() + d.years, out.getUTCMonth() + d.months, out.getUTCDate() + d.days);
  out.setUTCHours(out.getUTCHours() + d.hours);
  return out;
}

/**
 * Every wedding × class with a `wedding + X` rule, soonest first. The ceremony date counts from
 * its midnight UTC; a wedding without a ceremony date never expires (nothing to count from).
 */
export function classExpiries(
  classes: readonly DataClass[],
  tenants: readonly { id: string; ceremonyDate: string | null }[],
): ClassExpiry[] {
  const out: ClassExpiry[] = [];
  for (const c of classes) {
    if (c.keep.from !== 'wedding') continue;
    for (const t of tenants) {
      if (!t.ceremonyDate) continue;
      const ceremony = new Date(`${t.ceremonyDate.slice(0, 10)}T00:00:00Z`);
      if (Number.isNaN(ceremony.getTime())) continue;
      out.push({
        weddingId: t.id,
        dataClass: c.name,
        scope: classScope(weddingScope(t.id), c.name),
        expiresAt: after(ceremony, c.keep.after),
        rule: c.keep.text,
      });
    }
  }
  return out.sort((a, b) => a.expiresAt.getTime() - b.expiresAt.getTime() || (a.scope < b.scope ? -1 : 1));
}

export interface ExpiryHold {
  id: string;
  reason: string;
  weddingId: string | null;
  recoveryPointId: string | null;
}

export interface ExpiryVerdict extends ClassExpiry {
  action: 'expire' | 'held' | 'done' | 'pending';
  /** The hold that blocks it (action `held`). */
  hold?: { id: string; reason: string };
}

/**
 * Each expiry's fate at `now`: `done` when the ledger (or an erasure of the whole wedding) already
 * covers its scope, `pending` before its time, `held` while a hold names the wedding or a point
 * that holds it, else `expire`. `pointWeddings`: the weddings of each held point.
 */
export function judgeExpiries(
  expiries: readonly ClassExpiry[],
  input: {
    now: Date;
    holds: readonly ExpiryHold[];
    pointWeddings: ReadonlyMap<string, readonly string[] | undefined>;
    erased: ReadonlySet<string>;
  },
): ExpiryVerdict[] {
  return expiries.map((e) => {
    if (isErased(e.scope, input.erased)) return { ...e, action: 'done' };
    if (e.expiresAt > input.now) return { ...e, action: 'pending' };
    const hold = input.holds.find(
      (h) =>
        h.weddingId === e.weddingId ||
        // a point whose weddings are unknown is taken to hold every wedding: a hold errs on keeping
        (h.recoveryPointId !== null &&
          (input.pointWeddings.get(h.recoveryPointId)?.includes(e.weddingId) ?? true)),
    );
    if (hold) return { ...e, action: 'held', hold: { id: hold.id, reason: hold.reason } };
    return { ...e, action: 'expire' };
  });
}

/**
 * The classes whose point-relative rule (`"30d"`) has passed for a point taken at `pointTime`:
 * every restore of that point leaves them out, for every tenant.
 */
export function expiredPointClasses(
  classes: readonly DataClass[],
  now: () => Date = () => new Date(),
): (pointTime: Date) => string[] {
  const rules = classes.filter((c) => c.keep.from === 'point');
  return (pointTime) => rules.filter((c) => after(pointTime, c.keep.after) <= now()).map((c) => c.name);
}
