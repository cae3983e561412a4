/**
 * The database half of a point-in-time recovery: the base point restored (the whole database, or
 * one wedding), the bounded stream replayed over it, sequences and references settled, the result
 * checked; for `merge`, all of it in a scratch database whose wedding rows then go into the live
 * one in one transaction. Nothing partial stays: a `new` database this made is dropped on failure,
 * the scratch database always.
 */
import { randomBytes } from 'node:crypto';
import { dropScratchDatabase, checkDatabase } from '../postgres/drill-checks.js';
import { mergeWedding } from '../postgres/merge.js';
import { checkRecovered, type RecoveryChecks } from '../postgres/recovery-checks.js';
import { replayTransactions, type ReplayResult } from '../postgres/replay.js';
import { settleSequences } from '../postgres/sequences.js';
import { restorePostgres } from '../postgres/restore.js';
import { databaseName, dropCreated, prepareDatabase } from '../postgres/restore-target.js';
import { deleteWeddings, settleWedding } from '../postgres/settle-wedding.js';
import { NotInPointError } from '../../errors.js';
import type { Repository } from '../repo/repository.js';
import type { PgTree } from '../tree.js';
import type { Bounded } from './base.js';
import { type MergeReport, type RecoverOptions, type RecoverResult } from './recover.js';

export interface Context {
  erased: ReadonlySet<string>;
  /** The feed cut to the target, for one wedding or (undefined) the whole database. */
  streamFor: (wedding: string | undefined) => Bounded;
  progress: (fraction: number, step: string) => void;
  merge: boolean;
}

/** The scratch database a merge builds the wedding in: random, on the live database's server. */
export const scratchName = () => `wv_pitr_${randomBytes(6).toString('hex')}`;

export type Built = Pick<
  RecoverResult,
  'appliedTxns' | 'lastCommitTime' | 'lastCommitLsn' | 'validation' | 'replay'
> & {
  merge?: MergeReport;
};

/** Tenant ids of the ledger's whole-wedding scopes (`wedding:<id>`; class scopes are the feed's to leave out). */
const erasedWeddings = (erased: ReadonlySet<string>) =>
  [...erased].filter((s) => /^wedding:[^/]+$/.test(s)).map((s) => s.slice('wedding:'.length));

/** Restore, replay, settle: the database at url as of the target. */
export async function build(repo: Repository, tree: PgTree, url: string, opts: RecoverOptions, ctx: Context) {
  const wedding = opts.wedding;
  await restorePostgres(repo.reader({ wholePacks: wedding === undefined }), tree, {
    targetUrl: url,
    wedding,
    erased: ctx.erased,
    createDatabase: false,
  });
  ctx.progress(0.3, 'base point restored');
  // the base as the drill checks a restore: every table against its backup (whole database only)
  const base =
    wedding === undefined
      ? await checkDatabase(repo.reader(), tree, url, opts.paymentColumn, ctx.erased)
      : [];
  ctx.progress(0.4, 'base point checked');
  const replay = await replayTransactions(url, ctx.streamFor(wedding), { wedding });
  // the ledger again: an erased wedding's rows never come back, whatever the stream carried
  const erasedRows = await deleteWeddings(url, tree, erasedWeddings(ctx.erased));
  const sequences = ctx.merge ? 0 : await settleSequences(url, replay.sequences);
  const settled = wedding !== undefined ? await settleWedding(url, tree, !ctx.merge) : undefined;
  ctx.progress(0.9, 'replayed');
  // a merge's scratch keeps references to other weddings' rows: the live database's own keys check them
  const checks = await checkRecovered(url, tree, {
    wedding,
    paymentColumn: opts.paymentColumn,
    foreignKeys: !ctx.merge,
  });
  const problems = [
    ...base.map((p) => `base ${p.kind}: ${p.object}: ${p.detail}`),
    ...replay.missed.map((m) => `replay: ${m.op} of ${m.table} ${m.key} found no row`),
    ...checks.problems,
  ];
  return { replay, checks, problems, sequences, settled, erasedRows };
}

export function summary(replay: ReplayResult) {
  const mbPerS = replay.ms > 0 ? replay.bytes / 1e6 / (replay.ms / 1000) : 0;
  return {
    appliedTxns: replay.txns,
    lastCommitTime: replay.last?.commitTime,
    lastCommitLsn: replay.last?.commitLsn,
    replay: { txns: replay.txns, changes: replay.changes, bytes: replay.bytes, ms: replay.ms, mbPerS },
  };
}

export async function rebuild(
  repo: Repository,
  tree: PgTree,
  opts: RecoverOptions,
  ctx: Context,
): Promise<Built> {
  if (ctx.merge) return rebuildMerged(repo, tree, opts, ctx);
  if (opts.wedding === undefined && opts.firstWeddings?.length) {
    const { rebuildStaged } = await import('./staged.js');
    return rebuildStaged(repo, tree, opts, ctx, opts.firstWeddings);
  }
  return rebuildNew(repo, tree, opts, ctx);
}

/** Nothing partial: the database goes, and one that was there empty comes back empty. */
export async function undoNew(url: string, state: 'empty' | 'created' | 'live'): Promise<void> {
  await dropCreated(url).catch(() => undefined);
  if (state === 'empty')
    await prepareDatabase(url, { overwrite: false, create: true, keepExisting: false }).catch(
      () => undefined,
    );
}

async function rebuildNew(
  repo: Repository,
  tree: PgTree,
  opts: RecoverOptions,
  ctx: Context,
): Promise<Built> {
  const url = opts.targetDatabase;
  const state = await prepareDatabase(url, { overwrite: false, create: true, keepExisting: false });
  try {
    const b = await build(repo, tree, url, opts, ctx);
    ctx.progress(1, 'validated');
    const checks: Record<string, unknown> = {
      ...b.checks.checks,
      sequencesMoved: b.sequences,
      erasedRows: b.erasedRows,
    };
    if (b.settled) Object.assign(checks, { pruned: b.settled.pruned, nulledReferences: b.settled.nulled });
    return {
      ...summary(b.replay),
      validation: { ok: b.problems.length === 0, problems: b.problems, checks },
    };
  } catch (err) {
    await undoNew(url, state);
    throw err;
  }
}

export async function rebuildMerged(
  repo: Repository,
  tree: PgTree,
  opts: RecoverOptions,
  ctx: Context,
): Promise<Built> {
  const wedding = opts.wedding!;
  const scratch = new URL(opts.targetDatabase);
  scratch.pathname = `/${scratchName()}`;
  const scratchUrl = scratch.toString();
  try {
    await prepareDatabase(scratchUrl, { overwrite: false, create: true, keepExisting: false });
    const b = await build(repo, tree, scratchUrl, opts, ctx);
    const staged = Object.values(b.checks.checks.rows).reduce((n, x) => n + x, 0);
    if (staged === 0)
      throw new NotInPointError(`wedding ${wedding} has no rows as of the recovery target`, {
        details: { wedding },
      });
    const merge = await mergeWedding(scratchUrl, opts.targetDatabase, tree, wedding, opts.dryRun ?? false);
    ctx.progress(0.95, opts.dryRun ? 'dry run counted' : 'merged');
    const problems = [...b.problems];
    let live: RecoveryChecks | undefined;
    if (!opts.dryRun) {
      // what the live database now holds of the wedding is what the scratch database held
      live = await checkRecovered(opts.targetDatabase, tree, {
        wedding,
        paymentColumn: opts.paymentColumn,
        foreignKeys: false,
      });
      for (const [t, n] of Object.entries(b.checks.checks.rows))
        if (live.checks.rows[t] !== n)
          problems.push(`row_count: ${t}: ${live.checks.rows[t] ?? 0} live, ${n} recovered`);
      if (live.checks.paymentTotal !== b.checks.checks.paymentTotal)
        problems.push(
          `payment_total: ${live.checks.paymentTotal} live, ${b.checks.checks.paymentTotal} recovered`,
        );
    }
    ctx.progress(1, 'validated');
    const checks = {
      scratchDatabase: databaseName(scratchUrl),
      recovered: b.checks.checks,
      ...(live ? { live: live.checks } : {}),
      nulledReferences: b.settled?.nulled,
    };
    return { ...summary(b.replay), merge, validation: { ok: problems.length === 0, problems, checks } };
  } finally {
    await dropScratchDatabase(opts.targetDatabase, databaseName(scratchUrl)).catch(() => undefined);
  }
}
