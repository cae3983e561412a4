/**
 * Reading change segments back as transactions, in commit order, for recovery (CONTRACT: built
 * by the capture work; this signature is what recovery codes against).
 */
import type { Repository } from '../repo/repository.js';
import type { Txn } from './types.js';

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

/**
 * The transactions `opts` selects. Throws a typed error (CorruptionError, NotFoundError) on a
 * damaged or missing segment, and a ConflictError when the LSN ranges leave a gap between
 * `afterLsn` and the stopping point: a recovery never replays across a hole.
 */
export function changeFeed(repo: Repository, opts: FeedOptions): AsyncIterable<Txn> {
  void repo;
  void opts;
  throw new Error('changeFeed: not built yet');
}
