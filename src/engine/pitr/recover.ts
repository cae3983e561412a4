/**
 * Point-in-time recovery: the newest base point before the target, then the change segments up to
 * it, transaction by transaction; a whole database, or one wedding into a new database or merged
 * into a live one (CONTRACT: built by the recovery work; this signature is what the worker, the CLI
 * and disaster-recovery plans code against).
 */
import type { Storage } from '../../storage/types.js';

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
  onStage?: ((stage: { name: string; weddings: string[]; usableAt: string }) => void) | undefined;
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
}

export async function recoverToTarget(opts: RecoverOptions): Promise<RecoverResult> {
  void opts;
  throw new Error('recoverToTarget: not built yet');
}
