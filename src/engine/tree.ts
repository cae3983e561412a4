/**
 * The snapshot tree: what a backup's snapshot holds of each source, declared once here and read
 * back through snapshotTree(), the one place that narrows a loaded snapshot's tree.
 */
import { CorruptionError } from '../errors.js';
import type { ContentRef, KeyScope } from './api.js';
import type { PgTableInfo, SequenceValue } from './postgres/catalog.js';
import type { MaterializedView } from './postgres/matviews.js';
import type { PgForeignKey } from './postgres/references.js';
import type { TenancyClass, TenancyHop, Tenant } from './postgres/tenancy.js';

export interface Segment {
  tenant: string | null;
  scope: KeyScope;
  rows: number;
  ref: ContentRef;
}

/**
 * The rows of a table that changed since the previous backup, as the change slot reported them:
 * their keys, and the rows with those keys as they are in this snapshot (a deleted row's key has no
 * row). A restore drops every older row whose key a later delta names.
 */
export interface TableDelta {
  /** COPY text of the changed keys (the primary key's columns), one per line. */
  keys: ContentRef;
  keyCount: number;
  /** The changed rows present in this snapshot, in dump order, as a record list of segments. */
  segmentList: ContentRef;
  rows: number;
  bytes: number;
}

export interface PgTable extends PgTableInfo {
  rowCount: number;
  /** SHA-256 of the table's COPY text in dump order; absent when the table carries deltas. */
  digest?: string;
  /**
   * Changes since the base (the segments below), oldest first. The table's rows are the base's
   * and each delta's, minus rows whose key a later delta names.
   */
  deltas?: TableDelta[];
  /** The segments in dump order, as a record list (one JSON Segment per line). */
  segmentList?: ContentRef;
  /** Snapshots written before record lists hold the segments inline. */
  segments?: Segment[];
  /** Bytes of COPY text (the sum of the segments' sizes). */
  bytes?: number;
  /**
   * What changes a table's contents leave behind, read in the snapshot: oid, file nodes, frozen
   * xid horizon and the insert/update/delete counters. An incremental backup reuses the parent's
   * segments only when these are equal and no row is newer than the parent's snapshot.
   */
  marks?: string;
  /** true when this backup took the segments from its parent without reading the table. */
  reused?: boolean;
}

/** Who owns a table's rows, as the backup classified it (docs/ARCHITECTURE.md, "Tenancy"). */
export interface PgTableTenancy {
  class: TenancyClass;
  /** Whose rows (for `mixed`, the rows whose key is set); absent for platform tables. */
  tenant?: Tenant;
  /** The foreign keys followed from the table, in order; absent when none (the column is its own). */
  path?: TenancyHop[];
  /** The table and column the path ends at; absent for platform tables. */
  end?: { schema: string; name: string; column: string };
  /** Decided by `sources.postgres.tenancy`. */
  override?: true;
}

export interface PgTree {
  kind: 'postgres';
  database: string;
  serverVersion: string;
  snapshotTime: string;
  lsn: string;
  schema: { preData: ContentRef; postData: ContentRef };
  sequences: SequenceValue[];
  /** Materialized views to refresh after a full restore, dependencies first (absent before 2026-12). */
  materializedViews?: MaterializedView[];
  tables: PgTable[];
  tenants: { id: string; ceremonyDate: string | null }[];
  /** pg_current_snapshot() of the backup: which transactions' rows it holds. */
  xidSnapshot?: string;
  /** The change slot created with this backup's snapshot: the next backup reads its changes there. */
  changes?: { slot: string; lsn: string };
  /**
   * Every table's tenancy (partitions included), by `schema.table` as PostgreSQL users write it
   * (`app."Seating"`); absent in snapshots written before backups classified their tables.
   */
  tenancy?: Record<string, PgTableTenancy>;
  /** Every foreign key, for the references a one-wedding restore must settle (absent before 2026-12). */
  foreignKeys?: PgForeignKey[];
  /** Rows left out because the erasure ledger names their scope, by scope. */
  erased?: { scope: string; rows: number }[];
}

export interface FileEntry {
  /** '/'-separated, relative to the source root. */
  path: string;
  type: 'file' | 'dir' | 'symlink';
  size: number;
  mtimeMs: number;
  mode: number;
  /** Files only. */
  ref?: ContentRef;
  /** Symlinks only. */
  target?: string;
  /** Bucket objects only: the store's etag, used to spot unchanged objects. */
  etag?: string;
}

/** The files part of a tree: each configured files source's entries, by source name. */
export type FilesTree = Record<string, FileEntry[]>;

export interface SnapshotTree {
  postgres?: PgTree;
  files?: FilesTree;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isPgTree(v: unknown): v is PgTree {
  return (
    isRecord(v) &&
    v.kind === 'postgres' &&
    Array.isArray(v.tables) &&
    Array.isArray(v.tenants) &&
    (v.tenancy === undefined || (isRecord(v.tenancy) && Object.values(v.tenancy).every(isRecord)))
  );
}

function isFilesTree(v: unknown): v is FilesTree {
  return isRecord(v) && Object.values(v).every((entries) => Array.isArray(entries));
}

/**
 * A loaded snapshot's tree as the sources wrote it. The snapshot was authenticated when the
 * repository opened it (only this engine writes trees), so the parts are checked for their kind
 * and outline, not field by field; other keys (trees of tests, of later versions) are left out.
 */
export function snapshotTree(tree: unknown): SnapshotTree {
  if (tree === null || tree === undefined) return {};
  if (!isRecord(tree)) throw new CorruptionError('snapshot tree is not an object');
  const { postgres, files } = tree;
  const out: SnapshotTree = {};
  if (postgres !== undefined) {
    if (!isPgTree(postgres)) throw new CorruptionError('snapshot tree: postgres part is not a database tree');
    out.postgres = postgres;
  }
  if (files !== undefined) {
    if (!isFilesTree(files)) throw new CorruptionError('snapshot tree: files part is not a list per source');
    out.files = files;
  }
  return out;
}
