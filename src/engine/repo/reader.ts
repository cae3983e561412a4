/** Reads content back: one range read per blob, a few blobs ahead, every blob verified before it is served. */
import { Readable } from 'node:stream';
import { CorruptionError, NotFoundError, ValidationError } from '../../errors.js';
import { getBuffer } from '../../storage/types.js';
import type { ContentReader, ContentRef, FileAttrs } from '../api.js';
import { decodeBlobAsync, restoreFileFromPacks, type BlobEntry, type LocalBlob } from './blob.js';
import { INDEX_PREFIX } from './index.js';
import { openInline } from './inline.js';
import { packKey } from './pack.js';
import type { RepoContext } from './writer.js';

export interface ReaderOptions {
  /** Blobs fetched ahead of the consumer. */
  prefetch?: number;
  /**
   * Whole restores read nearly every blob, in the order they were written: fetch each pack whole
   * and keep the last few, instead of one range read per blob (a database's blobs are small and
   * hundreds of thousands). Off for reads of a few blobs, such as one wedding.
   */
  wholePacks?: boolean;
}

/** Packs kept by a wholePacks reader: the parallel restore streams stay within a few packs. */
const PACK_CACHE = 4;

export class RepoReader implements ContentReader {
  private readonly prefetch: number;
  private readonly wholePacks: boolean;
  /** Most recently used last. */
  private readonly packs = new Map<string, Promise<Buffer>>();

  constructor(
    private readonly ctx: RepoContext,
    opts: ReaderOptions = {},
  ) {
    this.prefetch = opts.prefetch ?? 4;
    this.wholePacks = opts.wholePacks ?? false;
  }

  read(ref: ContentRef): Readable {
    return Readable.from(this.blobs(ref), { objectMode: false });
  }

  /** The whole content in memory: for small things such as a snapshot's tree. */
  async readBuffer(ref: ContentRef): Promise<Buffer> {
    if (ref.inline !== undefined) return this.openInline(ref);
    if (ref.blobs.length === 1) {
      // most database segments: one blob, read without the generator
      const blob = await this.readBlob(ref.blobs[0]!, this.ctx.scopes.scopeHash(ref.scope));
      if (blob.length !== ref.size) this.wrongSize(ref, blob.length);
      return blob;
    }
    const parts: Buffer[] = [];
    for await (const b of this.blobs(ref)) parts.push(b);
    return Buffer.concat(parts);
  }

  /**
   * Restores content into a new file at `target` on an encoder thread, which reads the blobs from
   * their pack files itself: false, with nothing done, when the repository is not on this machine's
   * disk (the caller streams read() instead).
   */
  async writeFile(ref: ContentRef, target: string, attrs?: FileAttrs): Promise<boolean> {
    const storage = this.ctx.storage;
    if (!storage.localFile || ref.inline !== undefined) return false;
    const scopeHash = this.ctx.scopes.scopeHash(ref.scope);
    const blobs: LocalBlob[] = [];
    for (const id of ref.blobs) {
      const entry = await this.entry(id, scopeHash);
      const object = packKey(entry.pack);
      const keys = await this.ctx.scopes.byRef(entry.scopeHash, entry.keyId);
      blobs.push({ keys, entry, object, packFile: storage.localFile(object) });
    }
    const size = await restoreFileFromPacks(this.ctx.pool, target, blobs, attrs);
    if (size !== ref.size) this.wrongSize(ref, size);
    return true;
  }

  async *blobs(ref: ContentRef): AsyncGenerator<Buffer> {
    if (ref.inline !== undefined) {
      yield await this.openInline(ref);
      return;
    }
    const scopeHash = this.ctx.scopes.scopeHash(ref.scope);
    const queue: Promise<Buffer>[] = [];
    let next = 0;
    let total = 0;
    while (next < ref.blobs.length || queue.length > 0) {
      while (queue.length < this.prefetch && next < ref.blobs.length) {
        const p = this.readBlob(ref.blobs[next++]!, scopeHash);
        p.catch(() => undefined); // awaited below, in order
        queue.push(p);
      }
      const blob = await queue.shift()!;
      total += blob.length;
      yield blob;
    }
    if (total !== ref.size) this.wrongSize(ref, total);
  }

  /** Inline content (repo/inline.ts), opened with the key set of its scope it names. */
  private async openInline(ref: ContentRef): Promise<Buffer> {
    if (ref.blobs.length > 0) throw new CorruptionError(`content of ${ref.scope} names blobs and is inline`);
    const scopeHash = this.ctx.scopes.scopeHash(ref.scope);
    return openInline(ref, (keyId) => this.ctx.scopes.byRef(scopeHash, keyId));
  }

  private wrongSize(ref: ContentRef, size: number): never {
    throw new CorruptionError(`content of ${ref.size} bytes restored as ${size} bytes`, {
      object: this.holderOf(ref.blobs[0]),
    });
  }

  async readBlob(id: string, scopeHash?: string): Promise<Buffer> {
    const entry = await this.entry(id, scopeHash);
    const object = packKey(entry.pack);
    const keys = await this.ctx.scopes.byRef(entry.scopeHash, entry.keyId);
    let data: Buffer;
    try {
      if (this.wholePacks) {
        const pack = await this.pack(object);
        if (entry.offset + entry.length > pack.length) {
          throw new CorruptionError(`${object}: shorter than its index says`, { object });
        }
        data = pack.subarray(entry.offset, entry.offset + entry.length);
      } else {
        data = await getBuffer(this.ctx.storage, object, { offset: entry.offset, length: entry.length });
      }
    } catch (err) {
      if (err instanceof NotFoundError) throw new NotFoundError(`pack ${object} is missing`, { cause: err });
      if (err instanceof ValidationError) {
        throw new CorruptionError(`${object}: shorter than its index says`, { object, cause: err });
      }
      throw err;
    }
    return decodeBlobAsync(this.ctx.pool, keys, entry, data, object);
  }

  private pack(object: string): Promise<Buffer> {
    let p = this.packs.get(object);
    if (p) {
      this.packs.delete(object); // move to most recently used
    } else {
      p = getBuffer(this.ctx.storage, object);
      p.catch(() => this.packs.delete(object));
    }
    this.packs.set(object, p);
    while (this.packs.size > PACK_CACHE) this.packs.delete(this.packs.keys().next().value!);
    return p;
  }

  /** The blob's index entry; with a scope, an entry under another scope is corruption. */
  private async entry(id: string, scopeHash?: string): Promise<BlobEntry> {
    let entry = this.ctx.index.get(id);
    if (!entry) {
      await this.ctx.index.refresh();
      entry = this.ctx.index.get(id);
    }
    if (entry && scopeHash && entry.scopeHash !== scopeHash) {
      throw new CorruptionError(`blob ${id} is indexed under another key scope`, {
        object: this.holderOf(id),
      });
    }
    if (entry) return entry;
    // A pruned blob of an erased scope: gone as its keys are
    if (scopeHash && (await this.ctx.scopes.holds(scopeHash)) === false) {
      throw new NotFoundError(`blob ${id} of an erased scope (erased or never written)`);
    }
    // A damaged index is the likely reason a named blob cannot be found.
    const [badIndex] = this.ctx.index.bad.keys();
    throw new CorruptionError(
      `blob ${id} is in no readable index${badIndex ? `; ${badIndex} is damaged` : ''}`,
      {
        object: badIndex ?? INDEX_PREFIX,
      },
    );
  }

  private holderOf(id: string | undefined): string {
    const entry = id ? this.ctx.index.get(id) : undefined;
    return entry ? (this.ctx.index.indexesOf.get(entry.pack)?.[0] ?? packKey(entry.pack)) : INDEX_PREFIX;
  }
}
