/**
 * Point-in-time recovery: the newest base point before the target, then the change segments up to
 * it, transaction by transaction; a whole database, or one wedding into a new database or merged
 * into a live one (CONTRACT: built by the recovery work; this signature is what the worker, the CLI
 * and disaster-recovery plans code against).
 */
import { ConflictError, NotInPointError, ValidationError, errorMessage } from '../../errors.js';
import type { Storage } from '../../storage/types.js';
import { weddingScope } from '../api.js';
import { Repository } from '../repo/repository.js';
import { scopesLeftOut } from '../restore.js';
import { snapshotTree } from '../tree.js';
import { changeFeed, type FeedOptions } from './feed.js';
import {
  basePoints,
  bounded,
  chooseBase,
  checkTarget,
  micros,
  parseTarget,
  refuseSchemaBreak,
  type Bounded,
} from './base.js';
import { pitrWindow, type PitrWindow, type BasePoint } from './window.js';
import type { Txn } from './types.js';

export interface RecoverTarget {
  /** Exactly one of time (ISO 8601) and lsn; a named restore point is resolved to its LSN by the caller. */
  time?: string | undefined;
  lsn?: string | undefined;
  /** Include transactions committed exactly at the target (default true). */
  inclusive?: boolean | undefined;
}

export interface RecoverOptions {
  /** Copies of the repository, the healthiest first: the first that opens and holds the point is used. */
  copies: { target: string; storage: Storage }[];
  masterKey: Buffer;
  /** The capture's source name (`sources.postgres.pitr.slot`'s source: the config's postgres source, 'postgres'). */
  source: string;
  /** The base point; chosen when absent (the newest database point whose consistent point is at or before the target). */
  basePointId?: string | undefined;
  target: RecoverTarget;
  /** One wedding (tenant id); absent: the whole database. */
  wedding?: string | undefined;
  /** postgres:// URL. `new`: created (must not exist, or be empty); `merge`: a live database, possibly the source. */
  targetDatabase: string;
  mode: 'new' | 'merge';
  /** merge only: count what would be inserted and the conflicts, change nothing. */
  dryRun?: boolean | undefined;
  /** Data classes past their point-relative rule (policy/class-expiry.ts expiredPointClasses). */
  expiredClasses?: ((pointTime: string) => string[]) | undefined;
  onProgress?: ((fraction: number, step: string) => void) | undefined;
  /** Staged whole-database recovery: these weddings (and the platform tables) first; `onStage` is told when they are usable. */
  firstWeddings?: string[] | undefined;
  /** Stages `first` then `rest`; a returned promise is awaited before the next stage (widened from `void`). */
  onStage?:
    ((stage: { name: string; weddings: string[]; usableAt: string }) => void | Promise<void>) | undefined;
  /**
   * Optional (recovery work): where the transactions come from; default `changeFeed` (the
   * repository's change segments). Tests and tools hand in a stream of their own.
   */
  feed?: ((repo: Repository, opts: FeedOptions) => AsyncIterable<Txn>) | undefined;
  /** Optional (recovery work): the recoverable window (default `pitrWindow`; not asked when `feed` is given). */
  window?: ((repo: Repository, source: string, bases: BasePoint[]) => Promise<PitrWindow>) | undefined;
  /** Optional: the payment column checked after the recovery (`table.column`, default payments.amount). */
  paymentColumn?: string | undefined;
}

export interface MergeReport {
  /** Rows per table (`schema.table`) inserted (or, in a dry run, that would be). */
  inserted: Record<string, number>;
  /** Rows whose key the live database already holds: the merge was refused when any. */
  conflicts: { table: string; count: number; keys: string[] }[];
  /** Platform rows the wedding's rows reference that the live database lacks: refused when any. */
  missingReferences: { table: string; constraint: string; count: number; rows: string[] }[];
}

export interface RecoverResult {
  mode: 'new' | 'merge';
  dryRun: boolean;
  /** The copy it was read from. */
  fromTarget: string;
  basePoint: { id: string; time: string; lsn: string };
  /** The transactions replayed after the base point. */
  appliedTxns: number;
  lastCommitTime?: string | undefined;
  lastCommitLsn?: string | undefined;
  /** Seconds between the requested target and the newest commit the recovery holds (0: exact). */
  achievedRpoS: number;
  merge?: MergeReport | undefined;
  /** Consistency checks of the result (row counts, foreign keys, payment totals: drill-checks.ts). */
  validation: { ok: boolean; problems: string[]; checks: Record<string, unknown> };
  durationMs: number;
  /** Optional (recovery work): the replay's throughput, change payload bytes per second. */
  replay?: { txns: number; changes: number; bytes: number; ms: number; mbPerS: number } | undefined;
  /** Optional: copies tried before `fromTarget`, and why they failed. */
  failures?: { target: string; error: string }[] | undefined;
}

/** Same from every copy: trying the next would not help. */
const refusal = (err: unknown) =>
  err instanceof ConflictError || err instanceof ValidationError || err instanceof NotInPointError;

export async function recoverToTarget(opts: RecoverOptions): Promise<RecoverResult> {
  const started = Date.now();
  const target = parseTarget(opts.target);
  if (opts.mode === 'merge' && opts.wedding === undefined)
    throw new ValidationError('a merge recovery needs a wedding (weddingId)');
  if (opts.dryRun && opts.mode !== 'merge') throw new ValidationError('dryRun is for merge recoveries');
  await checkTarget(opts.targetDatabase, opts.mode);
  const failures: { target: string; error: string }[] = [];
  let last: unknown = new ValidationError('no copies to recover from');
  for (const copy of opts.copies) {
    try {
      const repo = await Repository.open(copy.storage, opts.masterKey);
      const r = await recoverFrom(repo, opts, target);
      return {
        ...r,
        fromTarget: copy.target,
        durationMs: Date.now() - started,
        ...(failures.length ? { failures } : {}),
      };
    } catch (err) {
      if (refusal(err)) throw err;
      last = err;
      failures.push({ target: copy.target, error: errorMessage(err) });
    }
  }
  if (last instanceof Error && failures.length > 1)
    last.message = `every copy failed: ${failures.map((f) => `${f.target}: ${f.error}`).join('; ')}`;
  throw last;
}

type Recovered = Omit<RecoverResult, 'fromTarget' | 'durationMs'>;

async function recoverFrom(
  repo: Repository,
  opts: RecoverOptions,
  target: ReturnType<typeof parseTarget>,
): Promise<Recovered> {
  const progress = opts.onProgress ?? (() => undefined);
  const bases = await basePoints(repo);
  const base = chooseBase(bases, opts.basePointId, target);
  // the window says where the segments end and where the schema broke; a hand-made feed has none
  const window = await (opts.window ?? (opts.feed ? undefined : pitrWindow))?.(repo, opts.source, bases);
  refuseSchemaBreak(window?.schemaBreaks ?? [], base, target);
  const snap = await repo.loadSnapshot(base.id);
  const tree = snapshotTree(snap.tree).postgres!;
  const erased = await scopesLeftOut(
    repo,
    base.time,
    opts.expiredClasses && ((d) => opts.expiredClasses!(d.toISOString())),
  );
  if (opts.wedding !== undefined && erased.has(weddingScope(opts.wedding)))
    throw new NotInPointError(`wedding ${opts.wedding} was erased`, { details: { wedding: opts.wedding } });
  progress(0.05, `base point ${base.id} (${base.time})`);
  // a stream per build: one, or (staged) one per first wedding and one for the whole database
  const streams: Bounded[] = [];
  const streamFor = (wedding: string | undefined) => {
    const feed = (opts.feed ?? changeFeed)(repo, {
      source: opts.source,
      afterLsn: base.lsn,
      until: { time: opts.target.time, lsn: opts.target.lsn, inclusive: target.inclusive },
      wedding,
      erased,
    });
    const s = bounded(feed, base, target, (t) => progress(0.4 + 0.5 * t, 'replay'));
    streams.push(s);
    return s;
  };
  const { rebuild } = await import('./rebuild.js');
  const built = await rebuild(repo, tree, opts, {
    erased,
    streamFor,
    progress,
    merge: opts.mode === 'merge',
  });
  return {
    ...built,
    basePoint: base,
    achievedRpoS: rpo(streams.at(-1)!, target, base, window?.latest),
    mode: opts.mode,
    dryRun: opts.dryRun ?? false,
  };
}

/**
 * 0 when the stream reached the target (it went past it, or the segments reach it); else the
 * seconds from the newest commit applied (or the base) to the target.
 */
function rpo(
  s: Bounded,
  target: ReturnType<typeof parseTarget>,
  base: { time: string },
  latest?: string,
): number {
  if (s.reached || target.time === undefined) return 0;
  if (latest !== undefined && micros(latest) >= target.time) return 0;
  const newest = micros(s.last?.commitTime ?? base.time);
  return Math.max(0, Math.round((target.time - newest) / 1000) / 1000);
}
