/** Blob encoding: id = HMAC of the plaintext, zstd when it shrinks, AES-256-GCM bound to id, scope and flags. */
import { webcrypto } from 'node:crypto';
import zstd from 'zstd-napi';
import { CorruptionError, NotFoundError } from '../../errors.js';
import { equalBytes, hmac, open, SEAL_OVERHEAD } from './crypto.js';
import type { FileAttrs } from '../api.js';
import type { EncodePool } from './encode-pool.js';
import type { KeySet } from './keys.js';
import { FLAG_ZSTD } from './seal-core.mjs';

const KNOWN_FLAGS = FLAG_ZSTD;
/** One decompression context for every blob this thread opens (a context per call costs more than a small blob). */
const decompressor = new zstd.Decompressor();

/** Where a blob lives and how to open it: one index entry. */
export interface BlobEntry {
  id: string;
  pack: string;
  offset: number;
  length: number;
  rawLength: number;
  flags: number;
  scopeHash: string;
  keyId: string;
}

/** The plaintext may come in parts (a segment's rows as COPY delivered them): same id as joined. */
export function blobId(keys: KeySet, ...plaintext: Buffer[]): string {
  return hmac(keys.idKey, ...plaintext).toString('hex');
}

/** The AAD of a blob without its flags byte: binds the ciphertext to its id, scope and key. */
export function blobAadPrefix(id: string, keys: Pick<KeySet, 'scopeHash' | 'keyId'>): Buffer {
  return Buffer.concat([
    Buffer.from('wedvault-blob-v1'),
    Buffer.from(id, 'hex'),
    Buffer.from(keys.scopeHash, 'hex'),
    Buffer.from(keys.keyId, 'hex'),
  ]);
}

function aad(id: string, keys: Pick<KeySet, 'scopeHash' | 'keyId'>, flags: number): Buffer {
  return Buffer.concat([blobAadPrefix(id, keys), Buffer.from([flags])]);
}

/** Below this size crypto runs on this thread: cheaper than a hop to the libuv pool. */
const SYNC_LIMIT = 256 * 1024;

const idKeys = new WeakMap<KeySet, Promise<webcrypto.CryptoKey>>();

/** Same value as blobId(), computed on the libuv pool. */
export async function blobIdAsync(keys: KeySet, plaintext: Buffer): Promise<string> {
  // A thread-pool round trip costs more than hashing a small blob here (one per wedding segment).
  if (plaintext.length < SYNC_LIMIT) return blobId(keys, plaintext);
  let k = idKeys.get(keys);
  if (!k) {
    k = webcrypto.subtle.importKey('raw', keys.idKey, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    idKeys.set(keys, k);
  }
  return Buffer.from(await webcrypto.subtle.sign('HMAC', await k, plaintext)).toString('hex');
}

const blobFailure = (entry: BlobEntry, object: string, why: string) =>
  new CorruptionError(`${object}: blob ${entry.id.slice(0, 16)}… ${why}`, { object });

/** What can be checked before reading: a length that can hold a sealed blob, flags this version knows. */
function checkEntry(entry: BlobEntry, object: string): void {
  if (entry.length < SEAL_OVERHEAD) throw blobFailure(entry, object, 'has the wrong length');
  if ((entry.flags & ~KNOWN_FLAGS) !== 0)
    throw blobFailure(entry, object, `has unknown flags ${entry.flags}`);
}

/** What can be checked before opening: the length the index gives and flags this version knows. */
function checkSealed(entry: BlobEntry, data: Buffer, object: string): void {
  if (data.length !== entry.length) throw blobFailure(entry, object, 'has the wrong length');
  checkEntry(entry, object);
}

/** A blob of a file to restore, in a pack that is a plain file on this machine. */
export interface LocalBlob {
  keys: KeySet;
  entry: BlobEntry;
  /** The pack's object name, for errors. */
  object: string;
  packFile: string;
}

/**
 * Restores a file on an encoder thread that reads its blobs out of local pack files: the bytes
 * written, after the same checks as decodeBlob() on every blob and with the same errors (a missing
 * pack is a NotFoundError, as a read of it would be).
 */
export async function restoreFileFromPacks(
  pool: EncodePool,
  target: string,
  blobs: LocalBlob[],
  attrs?: FileAttrs,
): Promise<number> {
  for (const b of blobs) checkEntry(b.entry, b.object);
  const r = await pool.restoreFile(
    target,
    blobs.map(({ keys, entry, packFile }) => ({
      sealedLength: entry.length,
      packFile,
      offset: entry.offset,
      encKey: keys.encKey,
      idKey: keys.idKey,
      aadPrefix: blobAadPrefix(entry.id, keys),
      flags: entry.flags,
      rawLength: entry.rawLength,
      id: entry.id,
    })),
    attrs,
  );
  if ('size' in r) return r.size;
  const b = blobs[r.at]!;
  if ('missing' in r) throw new NotFoundError(`pack ${b.object} is missing`);
  if ('short' in r)
    throw new CorruptionError(`${b.object}: shorter than its index says`, { object: b.object });
  throw blobFailure(b.entry, b.object, r.corrupt);
}

/** Blobs this big are opened on an encoder thread each; smaller ones in batches (decodeBlobAsync()). */
const THREAD_DECODE = 64 * 1024;
/** A batch of small blobs goes to a thread at this many blobs or bytes, or at the end of the tick. */
const BATCH_BLOBS = 256;
const BATCH_BYTES = 1 << 20;

interface Queued {
  keys: KeySet;
  entry: BlobEntry;
  data: Buffer;
  object: string;
  resolve: (plain: Buffer) => void;
  reject: (err: unknown) => void;
}
/** Small blobs waiting for their batch, per pool (a batch goes to one pool's threads). */
interface Queue {
  items: Queued[];
  bytes: number;
  flushing: NodeJS.Immediate | undefined;
}
const queues = new WeakMap<EncodePool, Queue>();

/**
 * decodeBlob() on the encoder threads: a big blob alone, small ones gathered into batches (one
 * message for many blobs), so a restore opens its hundreds of thousands of segments off the main
 * thread. Same checks and same errors as decodeBlob().
 */
export async function decodeBlobAsync(
  pool: EncodePool,
  keys: KeySet,
  entry: BlobEntry,
  data: Buffer,
  object: string,
): Promise<Buffer> {
  checkSealed(entry, data, object);
  if (data.length < THREAD_DECODE) {
    let q = queues.get(pool);
    if (!q) queues.set(pool, (q = { items: [], bytes: 0, flushing: undefined }));
    const queue = q;
    return new Promise<Buffer>((resolve, reject) => {
      queue.items.push({ keys, entry, data, object, resolve, reject });
      queue.bytes += data.length;
      if (queue.items.length >= BATCH_BLOBS || queue.bytes >= BATCH_BYTES) sendQueued(pool, queue);
      else queue.flushing ??= setImmediate(() => sendQueued(pool, queue));
    });
  }
  const out = await pool.decode({
    sealed: data,
    encKey: keys.encKey,
    idKey: keys.idKey,
    aad: aad(entry.id, keys, entry.flags),
    flags: entry.flags,
    rawLength: entry.rawLength,
    id: entry.id,
  });
  if (!Buffer.isBuffer(out)) throw blobFailure(entry, object, out.corrupt);
  return out;
}

function sendQueued(pool: EncodePool, queue: Queue): void {
  if (queue.flushing) clearImmediate(queue.flushing);
  queue.flushing = undefined;
  const batch = queue.items;
  queue.items = [];
  queue.bytes = 0;
  if (batch.length === 0) return;
  // a throw while the batch is built rejects its blobs, never escapes the immediate
  Promise.resolve()
    .then(() =>
      pool.decodeBatch(
        batch.map((q) => ({
          sealed: q.data,
          encKey: q.keys.encKey,
          idKey: q.keys.idKey,
          aadPrefix: blobAadPrefix(q.entry.id, q.keys),
          flags: q.entry.flags,
          rawLength: q.entry.rawLength,
          id: q.entry.id,
        })),
      ),
    )
    .then(
      (results) =>
        results.forEach((r, i) => {
          const q = batch[i]!;
          if (Buffer.isBuffer(r)) q.resolve(r);
          else q.reject(blobFailure(q.entry, q.object, r.corrupt));
        }),
      (err: unknown) => batch.forEach((q) => q.reject(err)),
    );
}

/**
 * A sealed body opened and, when its flags say so, decompressed on this thread; else what is
 * wrong with it. Blobs and inline content are stored this way.
 */
export function openBody(key: Buffer, sealed: Buffer, aad: Buffer, flags: number): Buffer | string {
  const body = open(key, sealed, aad);
  if (!body) return 'fails authentication';
  if (!(flags & FLAG_ZSTD)) return body;
  try {
    return decompressor.decompress(body);
  } catch {
    return 'does not decompress';
  }
}

/** Opens a blob read from `object` (its pack); every failure is a CorruptionError naming that object. */
export function decodeBlob(keys: KeySet, entry: BlobEntry, data: Buffer, object: string): Buffer {
  const fail = (why: string) => blobFailure(entry, object, why);
  checkSealed(entry, data, object);
  const plain = openBody(keys.encKey, data, aad(entry.id, keys, entry.flags), entry.flags);
  if (typeof plain === 'string') throw fail(plain);
  if (plain.length !== entry.rawLength) throw fail('has the wrong plaintext length');
  if (!equalBytes(hmac(keys.idKey, plain), Buffer.from(entry.id, 'hex'))) throw fail('does not match its id');
  return plain;
}
