/**
 * Compression and encryption of blobs on worker threads, in batches: a database backup makes
 * hundreds of thousands of small blobs (one per wedding and table), and a hop per blob would cost
 * more than the work. The main thread chunks, hashes and deduplicates; these threads encode.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { FatalError } from '../../errors.js';
import type { FileAttrs } from '../api.js';
import { batchBuffers, hold, replyBuffers, type Hold } from './buffers.js';
import { AAD_PREFIX_BYTES, ID_BYTES, KEY_BYTES, OPEN, RESTORE, SEAL } from './encode-layout.mjs';

export interface EncodeItem {
  /** Plaintext bytes, taken in order from the batch buffer. */
  length: number;
  compress: boolean;
  encKey: Buffer;
  /** The blob's AAD without its trailing flags byte (the thread appends the flags it chose). */
  aadPrefix: Buffer;
}

/**
 * A batch's sealed blobs, in order, in one buffer of `capacity` bytes. Its maker's `hold` on that
 * buffer is released once the blobs are copied or retained where they go.
 */
export interface EncodedBatch {
  blobs: Encoded[];
  capacity: number;
  hold: Hold;
}

export interface Encoded {
  /** nonce ‖ ciphertext ‖ tag, as crypto.seal() writes it. */
  sealed: Buffer;
  flags: number;
}

interface Reply {
  seq: number;
  data?: ArrayBuffer;
  lengths?: Uint32Array;
  flags?: Uint8Array;
  /** File tasks: each blob's id and plaintext length, and the bytes read. */
  ids?: string[];
  raw?: Uint32Array;
  size?: number;
  tooBig?: boolean;
  /** The sealed blobs were written into the task's spare (no data). */
  inSpare?: boolean;
  /** Decode tasks: what is wrong with the blob (batches: with each blob, by position). */
  corrupt?: string | (string | null | undefined)[];
  /** File restores: the failing blob's position, and whether its pack was missing or short. */
  at?: number;
  missing?: true;
  short?: true;
  error?: string;
  code?: string;
}

export interface FileTask {
  path: string;
  /** A file that turns out bigger than this is left to the caller (tooBig). */
  limit: number;
  params: { minSize: number; avgSize: number; maxSize: number };
  gear: Uint32Array;
  idKey: Buffer;
  encKey: Buffer;
  scopeHash: string;
  keyId: string;
  compress: boolean;
  /** The file's size as stat gave it, when known: sizes the buffer the reply is written into. */
  expectedSize?: number | undefined;
}

/** A file chunked, hashed and encoded on a thread; undefined when it grew past the task's limit. */
export interface EncodedFile extends EncodedBatch {
  size: number;
  blobs: (Encoded & { id: string; rawLength: number })[];
}

/**
 * Replies are written into buffers of replyBuffers (SharedArrayBuffers) of at least SPARE_MIN
 * bytes; a reply of more than SPARE_MAX comes in a buffer of its own. A buffer transferred back is
 * a new ArrayBuffer to this thread's heap each time, and V8 counts such memory towards starting a
 * full collection: a files backup's main thread ran one every ~50 ms (159 on a 14 MB heap).
 */
const SPARE_MIN = 2 << 20;
const SPARE_MAX = 16 << 20;

interface Slot {
  worker: Worker;
  busy: number;
}

const WORKER_URL = new URL('./encode-worker.mjs', import.meta.url);

export interface DecodeItem {
  sealed: Buffer;
  encKey: Buffer;
  idKey: Buffer;
  /** The blob's AAD without its flags byte. */
  aadPrefix: Buffer;
  flags: number;
  rawLength: number;
  /** The blob id, hex. */
  id: string;
}

/** A blob of a file to restore: where it lies in a pack file, and how to open it. */
export interface LocalBlobItem extends Omit<DecodeItem, 'sealed'> {
  sealedLength: number;
  packFile: string;
  offset: number;
}

/** How restoring a file on a thread went: its size, or the blob that failed (by position) and why. */
export type RestoredFile =
  | { size: number }
  | { at: number; missing: true }
  | { at: number; short: true }
  | { at: number; corrupt: string };

export class EncodePool {
  private readonly slots: Slot[] = [];
  private readonly waiting = new Map<
    number,
    { slot: Slot; resolve: (r: Reply) => void; reject: (e: Error) => void }
  >();
  private seq = 0;

  constructor(readonly threads = Math.max(1, availableParallelism())) {}

  /** Batches waiting on the threads. */
  get pending(): number {
    return this.waiting.size;
  }

  /**
   * `data` is a batch buffer of batchBuffers holding the items' plaintexts back to back: shared with
   * the thread, and given back to batchBuffers once the reply is in.
   */
  async encode(data: Buffer, items: EncodeItem[]): Promise<EncodedBatch> {
    const buffer = data.buffer;
    if (
      !(buffer instanceof SharedArrayBuffer) ||
      data.byteOffset !== 0 ||
      data.length !== buffer.byteLength
    ) {
      throw new FatalError('encoder: a batch must be a whole buffer of batchBuffers');
    }
    const slot = this.pick();
    const seq = ++this.seq;
    // fixed-size records in one transferable buffer: cloning an object per blob costs more
    const meta = Buffer.allocUnsafeSlow(items.length * SEAL.BYTES);
    items.forEach((item, n) => {
      const at = n * SEAL.BYTES;
      if (item.encKey.length !== KEY_BYTES || item.aadPrefix.length !== AAD_PREFIX_BYTES) {
        throw new FatalError('encoder: unexpected key or AAD length');
      }
      meta.writeUInt32LE(item.length, at + SEAL.LENGTH);
      meta[at + SEAL.COMPRESS] = item.compress ? 1 : 0;
      item.encKey.copy(meta, at + SEAL.KEY);
      item.aadPrefix.copy(meta, at + SEAL.AAD);
    });
    const metaBuffer = meta.buffer as ArrayBuffer;
    // sealing adds a nonce and a tag per blob and never makes a body bigger
    const spare = this.spare(data.length + items.length * 28);
    let reply: Reply;
    try {
      reply = await this.sendInto(
        spare,
        slot,
        seq,
        { seq, data: buffer, meta: metaBuffer, count: items.length },
        [metaBuffer],
      );
    } finally {
      batchBuffers.give(data);
    }
    return this.encoded(reply, spare);
  }

  /** Reads, chunks, hashes and encodes a whole file on a thread (read errors keep their fs code). */
  async encodeFile(task: FileTask): Promise<EncodedFile | undefined> {
    const slot = this.pick();
    const seq = ++this.seq;
    // sealed: the bytes, and a nonce and tag per chunk (at most one chunk per minimum chunk size)
    const size = task.expectedSize ?? SPARE_MIN;
    const spare = this.spare(size + (Math.ceil(size / task.params.minSize) + 1) * 28);
    const { expectedSize: _expected, ...fields } = task;
    const reply = await this.sendInto(spare, slot, seq, { ...fields, seq, kind: 'file' }, []);
    if (reply.tooBig) {
      if (spare) replyBuffers.give(spare);
      return undefined;
    }
    const ids = reply.ids ?? [];
    const raw = reply.raw ?? new Uint32Array(0);
    const encoded = this.encoded(reply, spare);
    return {
      ...encoded,
      size: reply.size ?? 0,
      blobs: encoded.blobs.map((e, i) => ({ ...e, id: ids[i]!, rawLength: raw[i]! })),
    };
  }

  /** A reply buffer for a reply of up to `size` bytes; none past SPARE_MAX. */
  private spare(size: number): Buffer | undefined {
    return size > SPARE_MAX ? undefined : replyBuffers.take(Math.max(size, SPARE_MIN));
  }

  /** send(), the thread told to write its reply into `spare`, which goes back should the task fail. */
  private async sendInto(
    spare: Buffer | undefined,
    slot: Slot,
    seq: number,
    message: object,
    transfer: ArrayBuffer[],
  ): Promise<Reply> {
    try {
      return await this.send(slot, seq, { ...message, spare: spare?.buffer }, transfer);
    } catch (err) {
      if (spare) replyBuffers.give(spare);
      throw err;
    }
  }

  /**
   * A reply's blobs, and a hold on the buffer they are in: a spare goes back for a later task's
   * reply once the hold is released (a reply too big for its spare came in a buffer of its own; the
   * spare is free at once).
   */
  private encoded(reply: Reply, spare: Buffer | undefined): EncodedBatch {
    const blobs = split(reply, spare);
    if (reply.data || !spare) {
      if (spare) replyBuffers.give(spare);
      return { blobs, capacity: reply.data?.byteLength ?? 0, hold: hold(() => undefined) };
    }
    return { blobs, capacity: spare.length, hold: hold(() => replyBuffers.give(spare)) };
  }

  /**
   * Opens a big sealed blob on a thread: the plaintext, or `{corrupt}` naming what failed
   * (authentication, decompression, length, id), as decodeBlob() would.
   */
  async decode(task: {
    sealed: Buffer;
    encKey: Buffer;
    idKey: Buffer;
    aad: Buffer;
    flags: number;
    rawLength: number;
    id: string;
  }): Promise<Buffer | { corrupt: string }> {
    const slot = this.pick();
    const seq = ++this.seq;
    const own = Buffer.allocUnsafeSlow(task.sealed.length);
    task.sealed.copy(own);
    const data = own.buffer as ArrayBuffer;
    const { sealed: _sealed, encKey, ...rest } = task;
    const reply = await this.send(slot, seq, { ...rest, key: encKey, seq, kind: 'decode', data }, [data]);
    if (typeof reply.corrupt === 'string') return { corrupt: reply.corrupt };
    if (!reply.data) throw new FatalError('decoder: reply without data');
    return Buffer.from(reply.data);
  }

  /**
   * Opens many small sealed blobs on one thread, in one message: each result is the plaintext or
   * what is wrong with the blob (as decodeBlob() words it). Length and flags are checked by the caller.
   */
  async decodeBatch(items: DecodeItem[]): Promise<(Buffer | { corrupt: string })[]> {
    const slot = this.pick();
    const seq = ++this.seq;
    let size = 0;
    for (const item of items) size += item.sealed.length;
    // the sealed blobs go in a shared batch buffer (no new ArrayBuffer crosses per batch)
    const data = batchBuffers.take(size);
    const meta = Buffer.allocUnsafeSlow(items.length * OPEN.BYTES);
    let at = 0;
    items.forEach((item, n) => {
      writeDecodeRecord(meta, n * OPEN.BYTES, item, item.sealed.length);
      at += item.sealed.copy(data, at);
    });
    const metaBuffer = meta.buffer as ArrayBuffer;
    let reply: Reply;
    try {
      reply = await this.send(
        slot,
        seq,
        { kind: 'decodeBatch', seq, data: data.buffer, meta: metaBuffer, count: items.length },
        [metaBuffer],
      );
    } finally {
      batchBuffers.give(data);
    }
    if (!reply.data || !reply.lengths) throw new FatalError('decoder: reply without data');
    const out = Buffer.from(reply.data);
    let from = 0;
    return items.map((_, i) => {
      const corrupt = reply.corrupt?.[i];
      if (corrupt !== undefined && corrupt !== null) return { corrupt };
      const len = reply.lengths![i]!;
      from += len;
      return out.subarray(from - len, from);
    });
  }

  /**
   * Writes a new file (exclusively created, mode 0600, then given `attrs`) from blobs the thread
   * reads from local pack files itself and opens as decodeBlob() does; an unfinished file is removed.
   */
  async restoreFile(target: string, items: LocalBlobItem[], attrs?: FileAttrs): Promise<RestoredFile> {
    const slot = this.pick();
    const seq = ++this.seq;
    const packs: string[] = [];
    const packNo = new Map<string, number>();
    const meta = Buffer.allocUnsafeSlow(items.length * RESTORE.BYTES);
    items.forEach((item, n) => {
      const r = n * RESTORE.BYTES;
      writeDecodeRecord(meta, r, item, item.sealedLength);
      let p = packNo.get(item.packFile);
      if (p === undefined) packNo.set(item.packFile, (p = packs.push(item.packFile) - 1));
      meta.writeUInt32LE(p, r + RESTORE.PACK);
      meta.writeUInt32LE(item.offset, r + RESTORE.OFFSET);
    });
    const buffer = meta.buffer as ArrayBuffer;
    const reply = await this.send(
      slot,
      seq,
      {
        kind: 'restoreFile',
        seq,
        target,
        packs,
        meta: buffer,
        count: items.length,
        mode: attrs?.mode,
        mtime: attrs ? attrs.mtimeMs / 1000 : undefined,
      },
      [buffer],
    );
    if (reply.size !== undefined) return { size: reply.size };
    const at = reply.at;
    if (at === undefined) throw new FatalError('restore thread: reply without a size');
    if (reply.missing) return { at, missing: true };
    if (reply.short) return { at, short: true };
    if (typeof reply.corrupt !== 'string') throw new FatalError('restore thread: failure without a reason');
    return { at, corrupt: reply.corrupt };
  }

  private send(slot: Slot, seq: number, message: object, transfer: ArrayBuffer[]): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      this.waiting.set(seq, { slot, resolve, reject });
      if (slot.busy++ === 0) slot.worker.ref();
      slot.worker.postMessage(message, transfer);
    });
  }

  async close(): Promise<void> {
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private pick(): Slot {
    if (this.slots.length < this.threads) {
      const free = this.slots.find((s) => s.busy === 0);
      if (free) return free;
      return this.spawn();
    }
    return this.slots.reduce((a, b) => (b.busy < a.busy ? b : a));
  }

  private spawn(): Slot {
    // Encoding keeps no state between batches: a small young generation keeps each thread lean.
    const worker = new Worker(WORKER_URL, { resourceLimits: { maxYoungGenerationSizeMb: 8 } });
    const slot: Slot = { worker, busy: 0 };
    worker.unref(); // idle threads never keep the process alive; busy ones are ref'd above
    worker.on('message', (reply: Reply) => this.settle(reply));
    worker.on('error', (err) => this.fail(slot, err));
    worker.on('exit', (code) => {
      if (code !== 0) this.fail(slot, new FatalError(`encoder thread exited with code ${code}`));
    });
    this.slots.push(slot);
    return slot;
  }

  private settle(reply: Reply): void {
    const w = this.waiting.get(reply.seq);
    if (!w) return;
    this.waiting.delete(reply.seq);
    if (--w.slot.busy === 0) w.slot.worker.unref();
    if (reply.error !== undefined) {
      // a read error (the file vanished, no permission) keeps its fs code, as a stream's would
      const err = reply.code
        ? Object.assign(new Error(reply.error.split('\n')[0]), { code: reply.code })
        : new FatalError(`blob encoding failed: ${reply.error}`);
      w.reject(err);
      return;
    }
    w.resolve(reply);
  }

  /** A dead thread fails its own batches; the next batch starts a new thread. */
  private fail(slot: Slot, err: Error): void {
    const idx = this.slots.indexOf(slot);
    if (idx >= 0) this.slots.splice(idx, 1);
    for (const [seq, w] of this.waiting) {
      if (w.slot !== slot) continue;
      this.waiting.delete(seq);
      w.reject(err);
    }
  }
}

/** One blob's decode record (OPEN.BYTES bytes at `r`). */
function writeDecodeRecord(
  meta: Buffer,
  r: number,
  item: Omit<DecodeItem, 'sealed'>,
  sealedLength: number,
): void {
  if (
    item.encKey.length !== KEY_BYTES ||
    item.idKey.length !== KEY_BYTES ||
    item.aadPrefix.length !== AAD_PREFIX_BYTES
  )
    throw new FatalError('decoder: unexpected key or AAD length');
  meta.writeUInt32LE(sealedLength, r + OPEN.SEALED_LENGTH);
  meta.writeUInt32LE(item.rawLength, r + OPEN.RAW_LENGTH);
  meta[r + OPEN.FLAGS] = item.flags;
  item.encKey.copy(meta, r + OPEN.KEY);
  item.idKey.copy(meta, r + OPEN.ID_KEY);
  item.aadPrefix.copy(meta, r + OPEN.AAD);
  meta.write(item.id, r + OPEN.ID, ID_BYTES, 'hex');
}

/** The sealed blobs of a reply, in order: in a buffer of the reply's own, or in the task's spare. */
function split(reply: Reply, spare: Buffer | undefined): Encoded[] {
  const out = reply.data ? Buffer.from(reply.data) : reply.inSpare ? spare : undefined;
  if (!out || !reply.lengths || !reply.flags) throw new FatalError('encoder: reply without data');
  const encoded: Encoded[] = [];
  let at = 0;
  for (let i = 0; i < reply.lengths.length; i++) {
    const len = reply.lengths[i]!;
    encoded.push({ sealed: out.subarray(at, at + len), flags: reply.flags[i]! });
    at += len;
  }
  return encoded;
}

let fallback: EncodePool | undefined;

/**
 * The pool of a repository opened without one (Repository.open's `pool` option): one per process,
 * so repositories opened side by side share the cores. Threads start on first use and idle ones do
 * not hold the process open.
 */
export function processEncodePool(): EncodePool {
  fallback ??= new EncodePool();
  return fallback;
}
