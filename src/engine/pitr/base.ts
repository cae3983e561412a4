/**
 * The parts of a point-in-time recovery before any row moves: the target read and checked, the
 * target database reached, and the base point chosen from the repository's own snapshots (the
 * catalog may be the thing that was lost).
 */
import pg from 'pg';
import { ConfigError, ConflictError, NotFoundError, TransientError, ValidationError } from '../../errors.js';
import type { Repository } from '../repo/repository.js';
import { snapshotTree } from '../tree.js';
import { compareLsn, lsnValue, type Txn } from './types.js';
import type { BasePoint, SchemaBreak } from './window.js';

export interface Target {
  /** Microseconds since the epoch (commit times carry microseconds). */
  time?: number | undefined;
  lsn?: string | undefined;
  inclusive: boolean;
}

export function parseTarget(t: {
  time?: string | undefined;
  lsn?: string | undefined;
  inclusive?: boolean | undefined;
}): Target {
  if ((t.time === undefined) === (t.lsn === undefined))
    throw new ValidationError('a recovery target is exactly one of a time and an LSN');
  const inclusive = t.inclusive ?? true;
  if (t.lsn !== undefined) {
    try {
      lsnValue(t.lsn);
    } catch {
      throw new ValidationError(`not an LSN: ${t.lsn}`);
    }
    return { lsn: t.lsn, inclusive };
  }
  const time = micros(t.time!);
  if (!Number.isFinite(time) || !/\d{4}-\d\d-\d\dT\d\d:\d\d/.test(t.time!))
    throw new ValidationError(`not an ISO 8601 time: ${t.time}`);
  return { time, inclusive };
}

/** An ISO 8601 time in microseconds since the epoch (Date keeps milliseconds only). */
export function micros(iso: string): number {
  const fraction = /:\d\d\.(\d+)/.exec(iso)?.[1] ?? '';
  return Date.parse(iso) * 1000 + Number(fraction.padEnd(6, '0').slice(3, 6));
}

/** Is a commit (time, LSN) within the target? */
export function withinTarget(t: Target, commit: { commitTime: string; commitLsn: string }): boolean {
  if (t.lsn !== undefined) {
    const c = compareLsn(commit.commitLsn, t.lsn);
    return t.inclusive ? c <= 0 : c < 0;
  }
  const at = micros(commit.commitTime);
  return t.inclusive ? at <= t.time! : at < t.time!;
}

/** Every database point of the repository with a change slot's consistent point: the bases, oldest first. */
export async function basePoints(repo: Repository): Promise<BasePoint[]> {
  const out: BasePoint[] = [];
  for (const s of await repo.listSnapshots()) {
    if (s.type !== 'full' && s.type !== 'incremental') continue;
    const lsn = snapshotTree((await repo.loadSnapshot(s.id)).tree).postgres?.changes?.lsn;
    if (lsn) out.push({ id: s.id, lsn, time: s.consistentPoint?.time ?? s.time });
  }
  return out;
}

/**
 * The base point: the one asked for (it must be a database point with a change slot's consistent
 * point at or before the target), else the newest such point.
 */
export function chooseBase(bases: BasePoint[], asked: string | undefined, t: Target): BasePoint {
  const fits = (b: BasePoint) =>
    t.lsn !== undefined ? compareLsn(b.lsn, t.lsn) <= 0 : micros(b.time) <= t.time!;
  if (asked !== undefined) {
    const b = bases.find((x) => x.id === asked);
    if (b && fits(b)) return b;
    throw new ValidationError(
      `recovery point ${asked} cannot be a base for this target: it is not a database point with a change slot's consistent point at or before the target`,
      { details: { recoveryPointId: asked } },
    );
  }
  const newest = bases.filter(fits).at(-1);
  if (!newest)
    throw new NotFoundError('no database recovery point with a change slot at or before the recovery target');
  return newest;
}

/**
 * A schema changed without the DDL trigger between the base and the target: the stream cannot
 * carry the recovery across it. ConflictError naming the change and the next base point.
 */
export function refuseSchemaBreak(breaks: SchemaBreak[], base: BasePoint, t: Target): void {
  if (t.time === undefined) return; // an LSN target: the breaks are dated, not placed; the feed refuses
  const hit = breaks.find((b) => micros(b.at) > micros(base.time) && micros(b.at) <= t.time!);
  if (!hit) return;
  const after = hit.baseTime
    ? `the next base point (${hit.basePointId}) is at ${hit.baseTime}`
    : 'no base point has been taken since';
  throw new ConflictError(
    `the schema changed at ${hit.at} without the DDL trigger, and ${after}: recover to a time before ${hit.at}${hit.baseTime ? ` or from ${hit.baseTime} on` : ''}`,
    { details: { schemaChangedAt: hit.at, nextBasePointId: hit.basePointId, nextBaseTime: hit.baseTime } },
  );
}

/**
 * Reaches the target's server before anything is read: `new` its maintenance database, `merge` the
 * live database itself. Unreachable: TransientError; refused credentials or a missing database: ConfigError.
 */
export async function checkTarget(url: string, mode: 'new' | 'merge'): Promise<void> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ValidationError('targetDatabase is not a connection URL');
  }
  if (mode === 'new') u.pathname = '/postgres';
  const c = new pg.Client({ connectionString: u.toString(), connectionTimeoutMillis: 10_000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
  } catch (err) {
    const code = (err as { code?: string }).code;
    const why = `target database unreachable: ${(err as Error).message}`;
    if (code && /^(28|3D)/.test(code)) throw new ConfigError(why, { cause: err, details: { code } });
    throw new TransientError(why, { cause: err, details: { code } });
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** A feed cut to the target: transactions after the base, up to the target; what it saw is kept. */
export interface Bounded extends AsyncIterable<Txn> {
  /** A transaction past the target was seen: the recovery holds everything up to it. */
  reached: boolean;
  last?: Txn | undefined;
}

export function bounded(
  feed: AsyncIterable<Txn>,
  base: BasePoint,
  t: Target,
  progress: (fraction: number) => void,
): Bounded {
  const from = micros(base.time);
  const out: Bounded = {
    reached: false,
    async *[Symbol.asyncIterator]() {
      for await (const txn of feed) {
        // the feed starts after the base already; a hand-made stream may not
        if (compareLsn(txn.commitLsn, base.lsn) <= 0) continue;
        if (!withinTarget(t, txn)) {
          out.reached = true;
          return;
        }
        if (out.last && compareLsn(txn.commitLsn, out.last.commitLsn) <= 0)
          throw new TransientError(
            `change stream out of order at ${txn.commitLsn} (after ${out.last.commitLsn})`,
          );
        out.last = txn;
        if (t.time !== undefined && t.time > from)
          progress(Math.min(1, (micros(txn.commitTime) - from) / (t.time - from)));
        yield txn;
      }
    },
  };
  return out;
}
