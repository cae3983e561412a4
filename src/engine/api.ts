/**
 * The contract between the repository (src/engine/repo) and the sources (src/engine/sources).
 * Sources turn data into byte streams per key scope; the repository chunks, deduplicates,
 * compresses, encrypts and packs them, and hands back references that a snapshot manifest records.
 */
import { Readable } from 'node:stream';

/** 'platform', `wedding:<tenantId>` or `supplier:<id>`: the unit of encryption, dedup and erasure. */
export type KeyScope = string;

export const PLATFORM_SCOPE: KeyScope = 'platform';
export const weddingScope = (tenantId: string): KeyScope => `wedding:${tenantId}`;
export const supplierScope = (id: string): KeyScope => `supplier:${id}`;

/**
 * A tenant's data of one retention class (`wedding:42/guest-pii`): its own key, destroyed when the
 * class expires for that tenant. Class names hold no '/', so the tenant's scope is what precedes
 * the last one.
 */
export const classScope = (tenantScope: KeyScope, dataClass: string): KeyScope =>
  `${tenantScope}/${dataClass}`;

/** The tenant scope a class scope belongs to; the scope itself when it is not a class scope. */
export function tenantOfScope(scope: KeyScope): KeyScope {
  const slash = scope.lastIndexOf('/');
  return slash > 0 && scope !== PLATFORM_SCOPE ? scope.slice(0, slash) : scope;
}

/**
 * Whether the erasure ledger's scopes cover `scope`: named itself, or its tenant erased whole
 * (erasing `wedding:42` erases `wedding:42/guest-pii` too). The one test every backup skip,
 * restore pick, files filter and drill makes.
 */
export function isErased(scope: KeyScope, erased: ReadonlySet<string>): boolean {
  if (erased.size === 0) return false;
  const tenant = tenantOfScope(scope);
  return (
    erased.has(scope) ||
    erased.has(tenant) ||
    (tenant !== scope && erased.has(everyTenantOf(scope.slice(tenant.length + 1))))
  );
}

/**
 * The class of every tenant at once ('*' before the class name): a point-relative rule (`30d`)
 * expires a class in a whole point, for whichever tenants it holds.
 */
export const everyTenantOf = (dataClass: string): string => `*/${dataClass}`;

/** A byte stream stored in the repository: its blobs in order. */
export interface ContentRef {
  scope: KeyScope;
  /** Blob ids (hex HMAC-SHA256 under the scope's id key), in stream order. */
  blobs: string[];
  /** Plaintext length. */
  size: number;
  /** The content is a record list (newline-delimited JSON) whose records may hold content references. */
  records?: true;
  /**
   * The content itself, sealed under the scope's key (repo/inline.ts), in place of blobs (then
   * none): small content its writer asked to keep inline.
   */
  inline?: string;
}

export interface WriteHint {
  /** false for media that does not shrink (JPEG, HEIC, MP4, ZIP); default: try and keep if smaller. */
  compress?: boolean;
  /** The size the content is expected to have (a file's size from stat), when known. */
  size?: number;
  /**
   * Content this small (repo/inline.ts INLINE_LIMIT) may be sealed into its reference instead of
   * a blob: for many tiny contents seldom the same twice (a delta's rows of one wedding).
   */
  inline?: boolean;
}

export interface WriteStats {
  /** Plaintext bytes handed to the writer. */
  bytesRead: number;
  /** Plaintext bytes of blobs the repository did not already hold. */
  bytesNew: number;
  /** Bytes added to the repository (after compression and encryption). */
  bytesStored: number;
  blobsTotal: number;
  blobsNew: number;
}

/** One backup's write session: dedups against the repository's index, packs new blobs. */
export interface ContentWriter {
  write(scope: KeyScope, data: Readable | AsyncIterable<Buffer>, hint?: WriteHint): Promise<ContentRef>;
  /** Bytes already in memory; a writer may take them without a stream (same ref as write()). */
  writeBuffer?(scope: KeyScope, data: Buffer | readonly Buffer[], hint?: WriteHint): Promise<ContentRef>;
  /**
   * A local file read and encoded off the main thread; undefined when it is bigger than `limit`
   * (then stream it with write()). Same ref as write() would give.
   */
  writeFile?(scope: KeyScope, path: string, limit: number, hint?: WriteHint): Promise<ContentRef | undefined>;
  /** Streams up to this many bytes always make one blob, so a source may gather them first. */
  readonly smallLimit?: number;
  /** Seal open packs and write their index; called before the snapshot is saved. */
  flush(): Promise<void>;
  readonly stats: WriteStats;
}

/** What a restored file is given once written: its permission bits and modification time. */
export interface FileAttrs {
  mode: number;
  mtimeMs: number;
}

export interface ContentReader {
  /** Streams the plaintext back, verifying every blob; CorruptionError names the object at fault. */
  read(ref: ContentRef): Readable;
  /**
   * Writes the content to a new file at `target` (created exclusively, mode 0600, then given
   * `attrs`) by a faster path where the reader has one; false when it has not, and nothing was done.
   */
  writeFile?(ref: ContentRef, target: string, attrs?: FileAttrs): Promise<boolean>;
  /** The whole content in memory, without a stream, where the reader can: for small contents. */
  readBuffer?(ref: ContentRef): Promise<Buffer>;
}

/** Writes bytes already in memory (whole or in parts), by the writer's fast path where it has one. */
export function writeBuffer(
  writer: ContentWriter,
  scope: KeyScope,
  data: Buffer | readonly Buffer[],
  hint?: WriteHint,
): Promise<ContentRef> {
  if (writer.writeBuffer) return writer.writeBuffer(scope, data, hint);
  return writer.write(scope, Readable.from(Buffer.isBuffer(data) ? [data] : data), hint);
}
