/**
 * The parts of a point-in-time recovery before any row moves: the target read and checked, the
 * target database reached, and the base point chosen from the repository's own snapshots (the
 * catalog may be the thing that was lost).
 */
import pg from 'pg';
import { ConfigError, NotFoundError, TransientError, ValidationError } from '../../errors.js';
import type { Repository } from '../repo/repository.js';
import { snapshotTree } from '../tree.js';
import { compareLsn, lsnValue, type Txn } from './types.js';

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

export interface BaseChoice {
  id: string;
  time: string;
  lsn: string;
}

/**
 * The base point: the one asked for (it must be a database point with a change slot's consistent
 * point at or before the target), else the newest such point.
 */
export async function chooseBase(
  repo: Repository,
  asked: string | undefined,
  t: Target,
): Promise<BaseChoice> {
  const fits = (time: string, lsn: string) =>
    t.lsn !== undefined ? compareLsn(lsn, t.lsn) <= 0 : micros(time) <= t.time!;
  const summaries = (await repo.listSnapshots()).filter((s) => s.type === 'full' || s.type === 'incremental');
  const candidates = asked !== undefined ? summaries.filter((s) => s.id === asked) : summaries.reverse();
  if (asked !== undefined && candidates.length === 0)
    throw new NotFoundError(`recovery point ${asked} is not in this repository`);
  for (const s of candidates) {
    const time = s.consistentPoint?.time ?? s.time;
    if (t.time !== undefined && micros(time) > t.time) continue;
    const pgTree = snapshotTree((await repo.loadSnapshot(s.id)).tree).postgres;
    const lsn = pgTree?.changes?.lsn;
    if (lsn && fits(time, lsn)) return { id: s.id, time, lsn };
  }
  if (asked !== undefined)
    throw new ValidationError(
      `recovery point ${asked} cannot be a base for this target: it holds no database with a change slot's consistent point at or before the target`,
    );
  throw new NotFoundError('no database recovery point with a change slot at or before the recovery target');
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
  base: BaseChoice,
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
