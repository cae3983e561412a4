/** One backup's write session: chunk, dedup, encode and pack blobs; upload packs in parallel; write the index. */
import type { Readable } from 'node:stream';
import { FatalError } from '../../errors.js';
import type { ContentRef, ContentWriter, KeyScope, WriteHint, WriteStats } from '../api.js';
import type { Storage } from '../../storage/types.js';
import { blobIdAsync, encodeBlob, type BlobEntry } from './blob.js';
import { chunkStream, type ChunkerParams } from './chunker.js';
import { encodeIndex, type RepoIndex } from './index.js';
import type { KeySet, MetaKeys, ScopeKeys } from './keys.js';
import { RepoLock } from './lock.js';
import { PackBuilder, packKey } from './pack.js';

/** What writer and reader share with the repository that made them. */
export interface RepoContext {
  storage: Storage;
  meta: MetaKeys;
  scopes: ScopeKeys;
  index: RepoIndex;
  chunker: ChunkerParams;
  gear: Uint32Array;
}

export interface WriterOptions {
  /** A pack is sealed once its blobs reach this many bytes. */
  packSize?: number;
  /** Pack uploads in flight at once. */
  uploads?: number;
  /** An index object is written every this many packs, so a killed backup keeps most of its work. */
  indexEvery?: number;
  /** Chunks of one write being compressed and encrypted at once. */
  encoders?: number;
  /** Take a shared lock for the session (default true). */
  lock?: boolean;
}

const DEFAULTS: Required<WriterOptions> = {
  packSize: 16 * 1024 * 1024,
  uploads: 3,
  encoders: 4,
  indexEvery: 32,
  lock: true,
};

const emptyStats = (): WriteStats => ({
  bytesRead: 0,
  bytesNew: 0,
  bytesStored: 0,
  blobsTotal: 0,
  blobsNew: 0,
});

export class RepoWriter implements ContentWriter {
  readonly stats: WriteStats = emptyStats();
  /** Pack and index objects this session wrote. */
  readonly written: { key: string; size: number }[] = [];
  private readonly opts: Required<WriterOptions>;
  private pack = new PackBuilder();
  /** Blob ids stored (or being stored) in this session: dedup before the index knows them. */
  private readonly session = new Set<string>();
  private readonly uploads = new Set<Promise<void>>();
  private unindexed: { id: string; blobs: BlobEntry[] }[] = [];
  private failure: unknown;
  private started: Promise<void> | undefined;
  private lock: RepoLock | undefined;
  private closed = false;

  constructor(
    private readonly ctx: RepoContext,
    options: WriterOptions = {},
  ) {
    this.opts = { ...DEFAULTS, ...options };
  }

  /** Chunks one stream; chunks never span two write calls, so each call is its own boundary. */
  async write(
    scope: KeyScope,
    data: Readable | AsyncIterable<Buffer>,
    hint: WriteHint = {},
  ): Promise<ContentRef> {
    await this.start();
    const keys = await this.ctx.scopes.forScope(scope);
    const compress = hint.compress !== false;
    let size = 0;
    // Hashing and encryption run on the libuv pool; this thread chunks the next bytes meanwhile.
    const inflight: Promise<string>[] = [];
    const blobs: string[] = [];
    for await (const chunk of chunkStream(data as AsyncIterable<Buffer>, this.ctx.chunker, this.ctx.gear)) {
      this.throwIfFailed();
      size += chunk.length;
      const p = this.chunk(keys, chunk, compress);
      p.catch(() => undefined); // awaited below, in order
      inflight.push(p);
      if (inflight.length >= this.opts.encoders) blobs.push(await inflight.shift()!);
    }
    for (const p of inflight) blobs.push(await p);
    return { scope, blobs, size };
  }

  /** Ids one chunk, and stores it unless this session or the index already has it. */
  private async chunk(keys: KeySet, chunk: Buffer, compress: boolean): Promise<string> {
    const id = await blobIdAsync(keys, chunk);
    this.stats.bytesRead += chunk.length;
    this.stats.blobsTotal++;
    if (this.session.has(id) || this.ctx.index.has(id)) return id;
    this.session.add(id);
    this.stats.blobsNew++;
    this.stats.bytesNew += chunk.length;
    await this.store(keys, id, chunk, compress);
    return id;
  }

  /** Seals the open pack, waits for every upload and writes the index; call once all writes resolved. */
  async flush(): Promise<void> {
    await this.start();
    await this.sealPack();
    while (this.uploads.size > 0) await Promise.allSettled([...this.uploads]);
    this.throwIfFailed();
    await this.writeIndex();
  }

  /** Releases the lock. Blobs not flushed are lost (their packs become orphans for prune). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.uploads]);
    await this.lock?.release();
  }

  private start(): Promise<void> {
    if (this.closed) throw new FatalError('this repository writer is closed');
    this.started ??= (async () => {
      await Promise.all([this.ctx.index.refresh(), this.ctx.scopes.preload()]);
      if (this.opts.lock) this.lock = await RepoLock.acquire(this.ctx.storage);
    })();
    return this.started;
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  private async store(keys: KeySet, id: string, chunk: Buffer, compress: boolean): Promise<void> {
    const enc = await encodeBlob(keys, id, chunk, compress);
    this.pack.add(id, enc.parts, {
      rawLength: chunk.length,
      flags: enc.flags,
      scopeHash: keys.scopeHash,
      keyId: keys.keyId,
    });
    this.stats.bytesStored += enc.length;
    if (this.pack.size >= this.opts.packSize) await this.sealPack();
  }

  private async sealPack(): Promise<void> {
    const builder = this.pack;
    if (builder.count === 0) return;
    this.pack = new PackBuilder();
    // Backpressure: at most `uploads` packs travel while the next one fills.
    while (this.uploads.size >= this.opts.uploads) await Promise.race(this.uploads).catch(() => undefined);
    this.throwIfFailed();
    const { id, bytes, blobs } = await builder.finish(this.ctx.meta.meta);
    this.stats.bytesStored += bytes.length - builder.size;
    const upload = (async () => {
      const key = packKey(id);
      await this.ctx.storage.put(key, bytes, { size: bytes.length });
      this.written.push({ key, size: bytes.length });
      this.unindexed.push({ id, blobs });
      if (this.unindexed.length >= this.opts.indexEvery) await this.writeIndex();
    })();
    const tracked = upload
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => this.uploads.delete(tracked));
    this.uploads.add(tracked);
  }

  private async writeIndex(): Promise<void> {
    const packs = this.unindexed;
    if (packs.length === 0) return;
    this.unindexed = [];
    const { key, bytes } = encodeIndex(this.ctx.meta.meta, packs);
    await this.ctx.storage.put(key, bytes, { size: bytes.length });
    this.written.push({ key, size: bytes.length });
    this.stats.bytesStored += bytes.length;
    this.ctx.index.add(key, packs);
  }
}
