/**
 * Encoder thread for src/engine/repo/encode-pool.ts. Its tasks:
 * - a batch of blobs: zstd (kept only when it shrinks the blob) then AES-256-GCM each;
 * - a whole small file: read, chunked (the same chunker as the main thread), each chunk's id
 *   (HMAC-SHA256 under the scope's id key) computed and the chunk encoded, so files are read and
 *   hashed on these threads instead of the main one;
 * - blobs to open (decrypt, decompress, check against their id): one big blob, or a batch of small
 *   ones, so that a restore's hundreds of thousands of segments are not opened on the main thread;
 * - a file to restore from a local repository: its blobs read from their pack files, opened and
 *   written to the new file here, so file restores never pass their bytes through the main thread.
 * Plain JavaScript so it loads the same under tsx, vitest and a build. The sealed format is
 * crypto.seal()'s: nonce ‖ ciphertext ‖ tag, and the AAD is the blob's AAD prefix followed by the
 * flags byte.
 */
import { Buffer } from 'node:buffer';
import { createCipheriv, createDecipheriv, createHmac, timingSafeEqual } from 'node:crypto';
import {
  closeSync,
  fchmodSync,
  fstatSync,
  futimesSync,
  openSync,
  readSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { parentPort } from 'node:worker_threads';
import zstd from 'zstd-napi';
import { Chunker } from './chunker-core.mjs';
import { OPEN, RESTORE, SEAL } from './encode-layout.mjs';
import { FLAG_ZSTD, NONCE_BYTES as NONCE, nextNonce, squeeze } from './seal-core.mjs';

const AAD_HEAD = Buffer.from('wedvault-blob-v1');
const compressor = new zstd.Compressor();
const decompressor = new zstd.Decompressor();
compressor.setParameters({ compressionLevel: 3 });

/** Seals one blob; pushes its pieces to `parts` and returns [sealed length, flags]. */
function seal(plain, key, aadPrefix, compress, parts) {
  const [body, flags] = squeeze(compressor, plain, compress);
  const nonce = nextNonce();
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.concat([aadPrefix, Buffer.from([flags])]));
  const head = cipher.update(body);
  const tail = cipher.final();
  parts.push(nonce, head, tail, cipher.getAuthTag());
  return [NONCE + head.length + tail.length + 16, flags];
}

/**
 * The parts back to back: in `spare` (a SharedArrayBuffer the caller keeps) when it is big
 * enough, else in a buffer of their own to transfer.
 */
function joined(parts, total, spare) {
  const inSpare = spare !== undefined && spare.byteLength >= total;
  const out = inSpare ? Buffer.from(spare, 0, total) : Buffer.allocUnsafeSlow(total);
  let at = 0;
  for (const p of parts) at += p.copy(out, at);
  return { out, inSpare };
}

/** A reply whose sealed blobs are in the spare or in `out` (then transferred), plus `fields`. */
function postBlobs(seq, { out, inSpare }, fields, transfer) {
  if (inSpare) parentPort.postMessage({ seq, inSpare, ...fields }, transfer);
  else parentPort.postMessage({ seq, data: out.buffer, ...fields }, [out.buffer, ...transfer]);
}

// `meta` holds a SEAL record per blob (encode-layout.mjs).
function batch({ seq, data, meta, count, spare }) {
  const input = Buffer.from(data);
  const records = Buffer.from(meta);
  const parts = [];
  const lengths = new Uint32Array(count);
  const flags = new Uint8Array(count);
  let offset = 0;
  let total = 0;
  for (let i = 0; i < count; i++) {
    const at = i * SEAL.BYTES;
    const length = records.readUInt32LE(at + SEAL.LENGTH);
    const plain = input.subarray(offset, offset + length);
    offset += length;
    const key = records.subarray(at + SEAL.KEY, at + SEAL.AAD);
    const aad = records.subarray(at + SEAL.AAD, at + SEAL.BYTES);
    [lengths[i], flags[i]] = seal(plain, key, aad, records[at + SEAL.COMPRESS] === 1, parts);
    total += lengths[i];
  }
  postBlobs(seq, joined(parts, total, spare), { lengths, flags }, [lengths.buffer, flags.buffer]);
}

/** The file being encoded, read whole: one buffer per thread, kept while files fit in this much. */
let fileBuffer = Buffer.alloc(0);
const KEEP_FILE_BUFFER = 8 << 20;

/** The whole file (a view of fileBuffer or of a buffer of its own), or undefined past `limit` bytes. */
function readWhole(fd, limit) {
  const want = fstatSync(fd).size + 1; // one byte more than stat says shows a file that grew
  let buf = fileBuffer;
  if (buf.length < want) buf = Buffer.allocUnsafeSlow(Math.min(Math.max(want, 1 << 20), limit + 1));
  let size = 0;
  for (;;) {
    if (size === buf.length) {
      if (size > limit) return undefined;
      const bigger = Buffer.allocUnsafeSlow(Math.min(buf.length * 2, limit + 1));
      buf.copy(bigger, 0, 0, size);
      buf = bigger;
    }
    const n = readSync(fd, buf, size, buf.length - size, null);
    if (n === 0) break;
    size += n;
  }
  if (size > limit) return undefined;
  if (buf.length <= KEEP_FILE_BUFFER) fileBuffer = buf;
  return buf.subarray(0, size);
}

function file({ seq, path, limit, params, gear, idKey, encKey, scopeHash, keyId, compress, spare }) {
  const chunker = new Chunker(params, gear);
  const tag = Buffer.concat([Buffer.from(scopeHash, 'hex'), Buffer.from(keyId, 'hex')]);
  const parts = [];
  const ids = [];
  const raw = [];
  const lengths = [];
  const flags = [];
  let total = 0;
  const take = (chunk) => {
    const id = createHmac('sha256', idKey).update(chunk).digest();
    const [length, f] = seal(chunk, encKey, Buffer.concat([AAD_HEAD, id, tag]), compress, parts);
    ids.push(id.toString('hex'));
    raw.push(chunk.length);
    lengths.push(length);
    flags.push(f);
    total += length;
  };
  const fd = openSync(path, 'r');
  let whole;
  try {
    whole = readWhole(fd, limit);
  } finally {
    closeSync(fd);
  }
  // it grew past what this thread takes on: the caller streams it instead
  if (!whole) return parentPort.postMessage({ seq, tooBig: true });
  const size = whole.length;
  for (const chunk of chunker.push(whole)) take(chunk);
  const tail = chunker.finish();
  if (tail) take(tail);
  const l = Uint32Array.from(lengths);
  const r = Uint32Array.from(raw);
  const f = Uint8Array.from(flags);
  postBlobs(seq, joined(parts, total, spare), { lengths: l, flags: f, raw: r, ids, size }, [
    l.buffer,
    r.buffer,
    f.buffer,
  ]);
}

/**
 * Opens one sealed blob as blob.ts decodeBlob() does (the caller has checked length and flags):
 * the plaintext, or a string saying what is wrong with it.
 */
function open1(sealed, key, idKey, aad, flags, rawLength, id) {
  const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE));
  d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  let body;
  try {
    body = d.update(sealed.subarray(NONCE, sealed.length - 16));
    const tail = d.final(); // empty for GCM: no second copy of the body for it
    if (tail.length > 0) body = Buffer.concat([body, tail]);
  } catch {
    return 'fails authentication';
  }
  let plain = body;
  if (flags & FLAG_ZSTD) {
    try {
      plain = decompressor.decompress(body);
    } catch {
      return 'does not decompress';
    }
  }
  if (plain.length !== rawLength) return 'has the wrong plaintext length';
  const mac = createHmac('sha256', idKey).update(plain).digest();
  if (!timingSafeEqual(mac, id)) return 'does not match its id';
  return plain;
}

/** open1() with what an OPEN record (encode-layout.mjs) at `r` in `m` says. */
function openRecord(m, r, sealed) {
  const flags = m[r + OPEN.FLAGS];
  return open1(
    sealed,
    m.subarray(r + OPEN.KEY, r + OPEN.ID_KEY),
    m.subarray(r + OPEN.ID_KEY, r + OPEN.AAD),
    Buffer.concat([m.subarray(r + OPEN.AAD, r + OPEN.ID), Buffer.from([flags])]),
    flags,
    m.readUInt32LE(r + OPEN.RAW_LENGTH),
    m.subarray(r + OPEN.ID, r + OPEN.BYTES),
  );
}

/** One big blob: replies with its plaintext or with what is wrong with it. */
function decode({ seq, data, key, idKey, aad, flags, rawLength, id }) {
  const plain = open1(Buffer.from(data), key, idKey, aad, flags, rawLength, Buffer.from(id, 'hex'));
  if (typeof plain === 'string') return parentPort.postMessage({ seq, corrupt: plain });
  let out = plain;
  if (plain.byteOffset !== 0 || plain.buffer.byteLength !== plain.length) {
    out = Buffer.allocUnsafeSlow(plain.length); // a view into a bigger buffer: send a copy of its own
    plain.copy(out);
  }
  parentPort.postMessage({ seq, data: out.buffer }, [out.buffer]);
}

/**
 * Many small blobs (a restore's segments), sealed bytes back to back in `data`, one fixed record
 * each in `meta` (an OPEN record of encode-layout.mjs): replies with the plaintexts back to back, their
 * lengths, and what is wrong with each one that fails (undefined for the others).
 */
function decodeBatch({ seq, data, meta, count }) {
  const input = Buffer.from(data);
  const m = Buffer.from(meta);
  const lengths = new Uint32Array(count);
  const corrupt = [];
  const parts = [];
  let total = 0;
  let at = 0;
  for (let i = 0; i < count; i++) {
    const r = i * OPEN.BYTES;
    const sealedLength = m.readUInt32LE(r + OPEN.SEALED_LENGTH);
    const plain = openRecord(m, r, input.subarray(at, at + sealedLength));
    at += sealedLength;
    if (typeof plain === 'string') {
      corrupt[i] = plain;
      continue;
    }
    parts.push(plain);
    lengths[i] = plain.length;
    total += plain.length;
  }
  postBlobs(seq, joined(parts, total), { lengths, corrupt }, [lengths.buffer]);
}

/**
 * One file of a restore from a local repository: each blob read from its pack file, opened as
 * open1() does, and written in order to a new file at `target` (created exclusively, mode 0600, so
 * nothing already there is written through), then given `mode` and `mtime` (seconds) when set.
 * `meta` holds a RESTORE record per blob (encode-layout.mjs): how to open it, its pack and offset.
 * Replies with the bytes written, or with the position of the blob that failed (`at`) and why (its
 * pack missing, shorter than the index says, or what open1() found); a file left unfinished is
 * removed.
 */
function restoreFile({ seq, target, packs, meta, count, mode, mtime }) {
  const m = Buffer.from(meta);
  const fds = new Map();
  let out;
  let reply;
  try {
    out = openSync(target, 'wx', 0o600);
    reply = writeBlobs(out, m, count, packs, fds);
    if (reply.size !== undefined && mode !== undefined) {
      fchmodSync(out, mode);
      futimesSync(out, mtime, mtime);
    }
  } finally {
    for (const fd of fds.values()) closeSync(fd);
    if (out !== undefined) {
      closeSync(out);
      if (reply?.size === undefined) unlinkSync(target);
    }
  }
  // only once the file is closed (or gone): the caller may look at it as soon as this arrives
  parentPort.postMessage({ seq, ...reply });
}

/** Sealed blobs read from packs: one buffer per thread, kept while blobs fit in KEEP_FILE_BUFFER. */
let sealedBuffer = Buffer.alloc(0);

function writeBlobs(out, m, count, packs, fds) {
  let size = 0;
  for (let i = 0; i < count; i++) {
    const r = i * RESTORE.BYTES;
    const sealedLength = m.readUInt32LE(r + OPEN.SEALED_LENGTH);
    const pack = m.readUInt32LE(r + RESTORE.PACK);
    let fd = fds.get(pack);
    if (fd === undefined) {
      try {
        fd = openSync(packs[pack], 'r');
      } catch (err) {
        if (err?.code === 'ENOENT') return { at: i, missing: true };
        throw err;
      }
      fds.set(pack, fd);
    }
    let sealed = sealedBuffer;
    if (sealed.length < sealedLength) {
      sealed = Buffer.allocUnsafeSlow(Math.max(sealedLength, 1 << 20));
      if (sealed.length <= KEEP_FILE_BUFFER) sealedBuffer = sealed;
    }
    const got = readSync(fd, sealed, 0, sealedLength, m.readUInt32LE(r + RESTORE.OFFSET));
    if (got !== sealedLength) return { at: i, short: true };
    const plain = openRecord(m, r, sealed.subarray(0, sealedLength));
    if (typeof plain === 'string') return { at: i, corrupt: plain };
    for (let at = 0; at < plain.length;) at += writeSync(out, plain, at);
    size += plain.length;
  }
  return { size };
}

parentPort.on('message', (task) => {
  try {
    if (task.kind === 'file') file(task);
    else if (task.kind === 'decode') decode(task);
    else if (task.kind === 'decodeBatch') decodeBatch(task);
    else if (task.kind === 'restoreFile') restoreFile(task);
    else batch(task);
  } catch (err) {
    parentPort.postMessage({ seq: task.seq, error: String(err?.stack ?? err), code: err?.code });
  }
});
