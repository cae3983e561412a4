/** One backup's write session: chunk, dedup, encode and pack blobs; upload packs in parallel; write the index. */
import { Readable } from 'node:stream';
import { FatalError } from '../../errors.js';
import type { ContentRef, ContentWriter, KeyScope, WriteHint, WriteStats } from '../api.js';
import type { Storage } from '../../storage/types.js';
import { batchBuffers, packBuffers, replyBuffers, type Hold } from './buffers.js';
import { blobAadPrefix, blobId, blobIdAsync } from './blob.js';
import { chunkStream, type ChunkerParams } from './chunker.js';
import type { EncodePool } from './encode-pool.js';
import type { EntryTable } from './entries.js';
import { encodeIndex, type RepoIndex } from './index.js';
import { INLINE_LIMIT, sealInline } from './inline.js';
import type { KeySet, MetaKeys, ScopeKeys } from './keys.js';
import { RepoLock, type OnLockBreak } from './lock.js';
import { PackBuilder, packKey } from './pack.js';

/** What writer and reader share with the repository that made them. */
export interface RepoContext {
  storage: Storage;
  meta: MetaKeys;
  scopes: ScopeKeys;
  index: RepoIndex;
  chunker: ChunkerParams;
  gear: Uint32Array;
  /** The encoder threads: sealing, whole files, opening blobs. */
  pool: EncodePool;
}

export interface WriterOptions {
  /** A pack is sealed once its blobs reach this many bytes. */
  packSize?: number;
  /** Pack uploads in flight at once. */
  uploads?: number;
  /** An index object is written every this many packs, so a killed backup keeps most of its work. */
  indexEvery?: number;
  /** …or once this many blobs wait for one (their entries stay in memory until it is written). */
  indexBlobs?: number;
  /** Chunks of one write being hashed at once. */
  encoders?: number;
  /** Blobs go to the encoder threads in batches of about this many bytes. */
  batchBytes?: number;
  /**
   * Take the repository's write lock for the session (default true): writers take turns, so a
   * backup sees every blob the one before it stored.
   */
  lock?: boolean;
  /** How long to wait for another writer's lock before ConflictError. */
  lockWaitMs?: number;
  /** Told of each lock found dead or stale and broken (default: a process warning). */
  onLockBreak?: OnLockBreak | undefined;
}

const DEFAULTS: Required<Omit<WriterOptions, 'onLockBreak'>> = {
  packSize: 12 * 1024 * 1024,
  uploads: 2,
  encoders: 4,
  batchBytes: 1024 * 1024,
  indexEvery: 8,
  indexBlobs: 65536,
  lock: true,
  lockWaitMs: 6 * 60 * 60_000,
};

const emptyStats = (): WriteStats => ({
  bytesRead: 0,
  bytesNew: 0,
  bytesStored: 0,
  blobsTotal: 0,
  blobsNew: 0,
});

/** Numbers the write sessions of this process (index claims name their session). */
let writers = 0;
/** Write sessions not closed yet: the last to close empties the buffer pools. */
let open = 0;

export class RepoWriter implements ContentWriter {
  readonly stats: WriteStats = emptyStats();
  /** Pack and index objects this session wrote. */
  readonly written: { key: string; size: number }[] = [];
  private readonly opts: typeof DEFAULTS & WriterOptions;
  private pack: PackBuilder;
  /** This session's mark on the index entries of the blobs it stores, until they are indexed. */
  private readonly claimant = ++writers;
  private readonly uploads = new Set<Promise<void>>();
  /** Sealed packs no index object lists yet: their headers' tables. */
  private unindexed: EntryTable[] = [];
  /** Blobs waiting for the next batch to the encoder threads; their bytes are in batchBuf. */
  private batch: { keys: KeySet; id: string; length: number; compress: boolean }[] = [];
  private batchBuf: Buffer | undefined;
  private batchSize = 0;
  private readonly encoding = new Set<Promise<void>>();
  /** Encoded batches join the open pack one after another. */
  private packing: Promise<void> = Promise.resolve();
  private failure: unknown;
  private started: Promise<void> | undefined;
  private lock: RepoLock | undefined;
  private closed = false;

  constructor(
    private readonly ctx: RepoContext,
    options: WriterOptions = {},
  ) {
    this.opts = { ...DEFAULTS, ...options };
    this.pack = this.newPack();
    open++;
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
    // a streamed write resolves once its blobs are in packs: stats and killed-backup state are exact
    await this.settle();
    return { scope, blobs, size };
  }

  /** Bytes up to this size always make one blob: the chunker never cuts below its minimum. */
  get smallLimit(): number {
    return this.ctx.chunker.minSize;
  }

  /**
   * One small stream already in memory (a wedding's rows of one table): hashed here and queued for
   * the encoder threads without a stream per call. Same blob as write() would make of these bytes.
   */
  async writeBuffer(
    scope: KeyScope,
    data: Buffer | readonly Buffer[],
    hint: WriteHint = {},
  ): Promise<ContentRef> {
    const parts = Buffer.isBuffer(data) ? [data] : data;
    let size = 0;
    for (const p of parts) size += p.length;
    const inline = hint.inline === true && size <= INLINE_LIMIT;
    if (size >= this.ctx.chunker.minSize && !inline) return this.write(scope, Readable.from(parts), hint);
    await this.start();
    this.throwIfFailed();
    const keys = await this.ctx.scopes.forScope(scope);
    if (size === 0) return { scope, blobs: [], size: 0 };
    if (inline) {
      // new bytes each time (never deduplicated), stored inside the record that holds the reference
      this.stats.bytesRead += size;
      this.stats.bytesNew += size;
      const plain = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      return { scope, blobs: [], size, inline: sealInline(keys, plain, hint.compress !== false) };
    }
    const id = blobId(keys, ...parts);
    if (this.claim(id, size)) await this.store(keys, id, parts, size, hint.compress !== false);
    return { scope, blobs: [id], size };
  }

  /**
   * A local file up to `limit` bytes, read, chunked, hashed and encoded on an encoder thread; the
   * blobs this repository already holds are dropped here. Undefined when the file turned out bigger
   * than `limit` (the caller streams it through write() instead). Same blobs as write() makes.
   */
  async writeFile(
    scope: KeyScope,
    file: string,
    limit: number,
    hint: WriteHint = {},
  ): Promise<ContentRef | undefined> {
    await this.start();
    this.throwIfFailed();
    const keys = await this.ctx.scopes.forScope(scope);
    const encoded = await this.ctx.pool.encodeFile({
      path: file,
      limit,
      params: this.ctx.chunker,
      gear: this.ctx.gear,
      idKey: keys.idKey,
      encKey: keys.encKey,
      scopeHash: keys.scopeHash,
      keyId: keys.keyId,
      compress: hint.compress !== false,
      expectedSize: hint.size,
    });
    if (!encoded) return undefined;
    const fresh = encoded.blobs.filter((b) => this.claim(b.id, b.rawLength));
    await this.packAll(
      fresh.map((b) => ({ ...b, keys })),
      encoded,
    );
    return { scope, blobs: encoded.blobs.map((b) => b.id), size: encoded.size };
  }

  /** Ids one chunk, and stores it unless this session or the index already has it. */
  private async chunk(keys: KeySet, chunk: Buffer, compress: boolean): Promise<string> {
    const id = await blobIdAsync(keys, chunk);
    if (this.claim(id, chunk.length)) await this.store(keys, id, [chunk], chunk.length, compress);
    return id;
  }

  /**
   * Counts one blob of the stream and tells whether it is new: true the first time this session
   * meets an id the index does not hold (the caller then stores it), false for a duplicate.
   */
  private claim(id: string, length: number): boolean {
    this.stats.bytesRead += length;
    this.stats.blobsTotal++;
    if (!this.ctx.index.claim(Buffer.from(id, 'hex'), this.claimant)) return false;
    this.stats.blobsNew++;
    this.stats.bytesNew += length;
    return true;
  }

  /**
   * Adds encoded blobs to the open pack, after those queued before them; seals packs as they fill.
   * Then releases the encoder's hold on their buffer. Blobs that fill at least half of it stay there
   * (each pack holding them retains it until stored: a portfolio's sealed photos are not copied
   * again); others are copied, so a mostly empty buffer (a database batch compresses to a fifth, and
   * duplicates are left out) is not held.
   */
  private packAll(
    blobs: { keys: KeySet; id: string; rawLength: number; sealed: Buffer; flags: number }[],
    from: { capacity: number; hold: Hold },
  ): Promise<void> {
    const bytes = blobs.reduce((n, b) => n + b.sealed.length, 0);
    const hold = bytes * 2 >= from.capacity ? from.hold : undefined;
    this.packing = this.packing.then(async () => {
      try {
        for (const b of blobs) {
          if (this.pack.count > 0 && !this.pack.fits(b.sealed.length)) await this.sealPack();
          const meta = {
            rawLength: b.rawLength,
            flags: b.flags,
            scopeHash: b.keys.scopeHash,
            keyId: b.keys.keyId,
          };
          this.pack.add(b.id, [b.sealed], meta, hold);
          this.stats.bytesStored += b.sealed.length;
          if (this.pack.size >= this.opts.packSize) await this.sealPack();
        }
      } finally {
        from.hold.release();
      }
    });
    return this.packing;
  }

  /** Seals the open pack, waits for every upload and writes the index; call once all writes resolved. */
  async flush(): Promise<void> {
    await this.start();
    await this.settle();
    await this.sealPack();
    while (this.uploads.size > 0) await Promise.allSettled([...this.uploads]);
    this.throwIfFailed();
    await this.writeIndex();
  }

  /** Releases the lock. Blobs not flushed are lost (their packs become orphans for prune). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.encoding]);
    await this.packing.catch(() => undefined);
    await Promise.allSettled([...this.uploads]);
    if (--open === 0) {
      packBuffers.clear();
      batchBuffers.clear();
      replyBuffers.clear();
    }
    await this.lock?.release();
  }

  private start(): Promise<void> {
    if (this.closed) throw new FatalError('this repository writer is closed');
    this.started ??= (async () => {
      const { storage, index, scopes } = this.ctx;
      if (this.opts.lock) {
        this.lock = await RepoLock.acquire(storage, {
          write: true,
          waitMs: this.opts.lockWaitMs,
          onBreak: this.opts.onLockBreak,
        });
        // temp files of writers killed mid-put (no other writer is putting now)
        await storage.sweepTemp?.();
      }
      // read after the lock: a writer that waited sees the blobs and key sets the one before stored
      await Promise.all([index.refresh(), this.opts.lock ? scopes.reload() : scopes.preload()]);
    })();
    return this.started;
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /**
   * Queues a new blob for encoding: its bytes are copied straight into the batch buffer that goes
   * to an encoder thread (no buffer per blob); waits only when the encoder threads are saturated.
   */
  private async store(
    keys: KeySet,
    id: string,
    parts: readonly Buffer[],
    length: number,
    compress: boolean,
  ): Promise<void> {
    const capacity = this.opts.batchBytes + this.ctx.chunker.minSize;
    // Other writes run while this one waits: check for room again after every wait, and copy
    // with no wait between the last check and the copy.
    for (;;) {
      this.throwIfFailed();
      if (!this.batchBuf) {
        // Backpressure before a new batch buffer, not after filling one: every write waiting
        // here would otherwise hold a full batch (dozens of tables' segments wait at once).
        if (this.encoding.size >= this.ctx.pool.threads * 2) {
          await Promise.race(this.encoding);
          continue;
        }
        this.batchBuf = batchBuffers.take(Math.max(capacity, length));
        this.batchSize = 0;
      } else if (this.batch.length === 0 && this.batchBuf.length < length) {
        // a big chunk gets a batch buffer of its own size
        batchBuffers.give(this.batchBuf);
        this.batchBuf = batchBuffers.take(length);
      }
      if (this.batchSize + length <= this.batchBuf.length) break;
      this.dispatch();
    }
    const start = this.batchSize;
    for (const p of parts) this.batchSize += p.copy(this.batchBuf, this.batchSize);
    if (this.batchSize - start !== length) throw new FatalError('writer: blob length changed while queued');
    this.batch.push({ keys, id, length, compress });
    if (this.batchSize >= this.opts.batchBytes || this.batch.length >= 1024) this.dispatch();
  }

  /** Sends the open batch and waits until every queued blob is in a pack. */
  private async settle(): Promise<void> {
    this.dispatch();
    while (this.encoding.size > 0) await Promise.allSettled([...this.encoding]);
    this.throwIfFailed();
    await this.packing;
  }

  /** Sends the open batch to a thread; store() keeps the batches in flight to two per thread. */
  private dispatch(): void {
    const items = this.batch;
    const data = this.batchBuf;
    if (items.length === 0 || !data) return;
    this.batch = [];
    this.batchBuf = undefined;
    this.batchSize = 0;
    const done = this.ctx.pool
      .encode(
        data,
        items.map((i) => ({
          length: i.length,
          compress: i.compress,
          encKey: i.keys.encKey,
          aadPrefix: blobAadPrefix(i.id, i.keys),
        })),
      )
      .then(async (encoded) => {
        await this.packAll(
          items.map(({ keys, id, length }, n) => ({ keys, id, rawLength: length, ...encoded.blobs[n]! })),
          encoded,
        );
      });
    const tracked = done
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => this.encoding.delete(tracked));
    this.encoding.add(tracked);
  }

  /** Room for a full pack, its last blob and its header: most packs never grow. */
  private newPack(): PackBuilder {
    return new PackBuilder(this.opts.packSize + (this.opts.packSize >> 3));
  }

  private async sealPack(): Promise<void> {
    const builder = this.pack;
    if (builder.count === 0) return;
    this.pack = this.newPack();
    // Backpressure: at most `uploads` packs travel while the next one fills.
    while (this.uploads.size >= this.opts.uploads) await Promise.race(this.uploads).catch(() => undefined);
    this.throwIfFailed();
    const { id, parts, size, entries, release } = builder.finish(this.ctx.meta.meta);
    this.stats.bytesStored += size - builder.size;
    const upload = (async () => {
      const key = packKey(id);
      try {
        await this.ctx.storage.put(key, parts, { size });
      } finally {
        release(); // stored (or failed): nothing reads these bytes again
      }
      this.written.push({ key, size });
      this.unindexed.push(entries);
      const waiting = this.unindexed.reduce((n, t) => n + t.groups[0]!.count, 0);
      if (this.unindexed.length >= this.opts.indexEvery || waiting >= this.opts.indexBlobs)
        await this.writeIndex();
    })();
    const tracked = upload
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => this.uploads.delete(tracked));
    this.uploads.add(tracked);
  }

  private async writeIndex(): Promise<void> {
    // keys first: no index may name a blob whose key set is not stored yet
    const bundle = await this.ctx.scopes.persist();
    if (bundle) {
      this.written.push(bundle);
      this.stats.bytesStored += bundle.size;
    }
    const packs = this.unindexed;
    if (packs.length === 0) return;
    this.unindexed = [];
    // packs and keys on disk before an index names them (a local disk syncs their directories)
    await this.ctx.storage.sync?.();
    const { key, bytes, table } = encodeIndex(this.ctx.meta.meta, packs);
    await this.ctx.storage.put(key, bytes, { size: bytes.length });
    this.written.push({ key, size: bytes.length });
    this.stats.bytesStored += bytes.length;
    this.ctx.index.addTable(key, table);
  }
}
