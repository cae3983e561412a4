/**
 * Reading change segments back as transactions, in commit order, for recovery: every scope's part
 * merged back into whole transactions, or one wedding's parts with the platform's and the touches.
 */
import { ConflictError, CorruptionError, NotFoundError } from '../../errors.js';
import { isErased, PLATFORM_SCOPE, tenantOfScope, weddingScope } from '../api.js';
import type { Repository } from '../repo/repository.js';
import { segmentRange, type SegmentManifest, type TxnPart } from '../repo/segments.js';
import { micros } from './base.js';
import { compareLsn, type Txn } from './types.js';

export interface FeedOptions {
  /** The capture's source name (segments live under `changes/<source>/`). */
  source: string;
  /** Transactions committed after this LSN: the base point's consistent point (`PgTree.changes.lsn`). */
  afterLsn: string;
  /** Where to stop: commit time or commit LSN (exactly one), inclusive by default. */
  until: { time?: string | undefined; lsn?: string | undefined; inclusive?: boolean | undefined };
  /**
   * Undefined: every scope, each transaction whole (a whole-database recovery). A tenant id: that
   * wedding's parts (its class scopes included), the platform parts and every `touch`, each
   * transaction's changes in their original order.
   */
  wedding?: string | undefined;
  /** Scopes the erasure ledger names (isErased in engine/api.ts): their parts are never read. */
  erased?: ReadonlySet<string> | undefined;
}

/** Past the stopping point: the feed yields the first such transaction too (the caller cuts there). */
function past(opts: FeedOptions, t: { commitTime: string; commitLsn: string }): boolean {
  const u = opts.until;
  if (u.lsn !== undefined) return compareLsn(t.commitLsn, u.lsn) > 0;
  if (u.time === undefined) return false;
  const d = micros(t.commitTime) - micros(u.time);
  return u.inclusive === false ? d >= 0 : d > 0;
}

/** The scopes of a segment the feed reads. */
function scopesOf(m: SegmentManifest, opts: FeedOptions): string[] {
  const wanted = (scope: string) =>
    opts.wedding === undefined ||
    scope === PLATFORM_SCOPE ||
    tenantOfScope(scope) === weddingScope(opts.wedding);
  return Object.keys(m.parts).filter((s) => wanted(s) && !isErased(s, opts.erased ?? new Set()));
}

/** One segment's transactions, parts merged back by their changes' positions. */
async function transactions(repo: Repository, m: SegmentManifest, opts: FeedOptions): Promise<Txn[]> {
  const byLsn = new Map<string, { txn: Txn; order: number[] }>();
  for (const scope of scopesOf(m, opts)) {
    let parts: TxnPart[];
    try {
      parts = JSON.parse((await repo.openSegmentPart(m, scope)).toString()) as TxnPart[];
    } catch (err) {
      // erased since: unreadable by design; any other missing key is damage, never a silent hole
      if (err instanceof NotFoundError && (await repo.scopeErased(scope))) continue;
      if (err instanceof NotFoundError)
        throw new CorruptionError(`change segment part of ${scope} cannot be opened: ${err.message}`);
      throw err;
    }
    for (const p of parts) {
      let t = byLsn.get(p.commitLsn);
      if (!t)
        byLsn.set(
          p.commitLsn,
          (t = {
            txn: { xid: p.xid, commitLsn: p.commitLsn, commitTime: p.commitTime, changes: [] },
            order: [],
          }),
        );
      for (const { i, ...change } of p.changes) {
        // a whole-database replay needs no touch that names an owner: the UPDATE is in its part
        if (opts.wedding === undefined && change.kind === 'touch' && change.scope !== undefined) continue;
        t.txn.changes.push(change);
        t.order.push(i);
      }
    }
  }
  const out = [...byLsn.values()].sort((a, b) => compareLsn(a.txn.commitLsn, b.txn.commitLsn));
  return out.map(({ txn, order }) => {
    const idx = order.map((_, k) => k).sort((a, b) => order[a]! - order[b]!);
    return { ...txn, changes: idx.map((k) => txn.changes[k]!) };
  });
}

/**
 * The transactions `opts` selects, and the first one past the stopping point. Throws a
 * ConflictError when the LSN ranges leave a gap between `afterLsn` and the stopping point (a
 * recovery never replays across a hole), CorruptionError for a damaged segment.
 */
export function changeFeed(repo: Repository, opts: FeedOptions): AsyncIterable<Txn> {
  return {
    async *[Symbol.asyncIterator]() {
      let covered: string | undefined;
      let sequences: Record<string, string> | undefined;
      for (const key of await repo.listSegmentKeys(opts.source)) {
        const range = segmentRange(key)!;
        if (compareLsn(range.endLsn, opts.afterLsn) <= 0) continue;
        const expected = covered ?? opts.afterLsn;
        if (covered === undefined ? compareLsn(range.startLsn, expected) > 0 : range.startLsn !== expected) {
          throw new ConflictError(
            `change segments leave a gap between ${expected} and ${range.startLsn}: no recovery past ${expected}`,
            { details: { afterLsn: expected, beforeLsn: range.startLsn } },
          );
        }
        const m = await repo.loadSegment(key);
        if (m.gap) {
          throw new ConflictError(`the change stream has a gap after ${m.startLsn}: ${m.gap.reason}`, {
            details: { afterLsn: m.startLsn, beforeLsn: m.endLsn },
          });
        }
        sequences = { ...sequences, ...m.sequences };
        let last: Txn | undefined;
        for (const txn of await transactions(repo, m, opts)) {
          if (compareLsn(txn.commitLsn, opts.afterLsn) <= 0) continue;
          if (past(opts, txn)) {
            if (last) yield { ...last, sequences };
            yield txn;
            return;
          }
          if (last) yield last;
          last = txn;
        }
        if (last) {
          yield { ...last, sequences };
          sequences = undefined;
        }
        covered = range.endLsn;
        if (opts.until.lsn !== undefined && compareLsn(range.endLsn, opts.until.lsn) >= 0) return;
      }
    },
  };
}
