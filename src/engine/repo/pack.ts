/** Pack objects: many encrypted blobs then a sealed header listing them, named by the SHA-256 of their bytes. */
import { createHash, type Hash } from 'node:crypto';
import { CorruptionError } from '../../errors.js';
import { getBuffer, type Storage } from '../../storage/types.js';
import type { BlobEntry } from './blob.js';
import { packBuffers, type Hold } from './buffers.js';
import { open, seal, sha256Hex } from './crypto.js';
import { decodeTable, groupEntries, TableBuilder, type EntryTable } from './entries.js';

export const DATA_PREFIX = 'data/';
const MAGIC = Buffer.from('WVP1');
const TRAILER_BYTES = 8; // u32 header length ‖ magic
const HEADER_AAD = 'wedvault-pack-header-v1';
/** The first byte of a format-1 (JSON) header or index. */
export const JSON_TABLE = 0x7b;

export const packKey = (id: string): string => `${DATA_PREFIX}${id.slice(0, 2)}/${id}`;
export const packIdOf = (key: string): string => key.slice(key.lastIndexOf('/') + 1);

/** Blob fields as format-1 (JSON) headers and indexes list them: [id, offset, length, rawLength, flags, scopeHash, keyId]. */
export type PackedBlob = [string, number, number, number, number, string, string];

export function fromPacked(pack: string, p: PackedBlob): BlobEntry {
  const [id, offset, length, rawLength, flags, scopeHash, keyId] = p;
  return { id, pack, offset, length, rawLength, flags, scopeHash, keyId };
}

/** The pack's own buffers, for the blobs it copies, come in this size (or a bigger blob's). */
const OWN_BUFFER = 2 * 1024 * 1024;

/**
 * Collects blobs in memory until the pack is big enough to upload, as parts to be written back to
 * back. A blob given with a `Hold` on the buffer it is in stays there: the pack retains the hold
 * until it is stored (a portfolio's sealed photos are not copied again). Other blobs are copied
 * into buffers of the pack's own, taken as they fill (a pack of held blobs takes none), so a
 * mostly empty buffer is not held.
 */
export class PackBuilder {
  /** The pack's own buffers; the last one is being filled. */
  private readonly own: Buffer[] = [];
  private ownSize = 0;
  private readonly parts: Buffer[] = [];
  private readonly holds = new Set<Hold>();
  private readonly entries = new TableBuilder().group();
  /** SHA-256 of the bytes so far, fed as blobs arrive while they are still in cache. */
  private readonly hash: Hash = createHash('sha256');
  size = 0;

  constructor(private readonly capacity = 16 * 1024 * 1024) {}

  get count(): number {
    return this.entries.count;
  }

  /**
   * Whether a blob of `length` bytes, and the header that will list it, still fit the capacity.
   * A writer seals the pack first when not.
   */
  fits(length: number): boolean {
    // a header entry is 49 bytes, plus at most one key set (~100 bytes) of its own; sealing adds
    // 28 bytes and the trailer 8
    const header = (this.entries.count + 1) * 160 + 1024;
    return this.size + length + header <= this.capacity;
  }

  /** Adds a blob: left where it is under `hold`, else copied. */
  add(
    id: string,
    data: Buffer[],
    meta: Omit<BlobEntry, 'id' | 'pack' | 'offset' | 'length'>,
    hold?: Hold,
  ): void {
    const length = data.reduce((n, b) => n + b.length, 0);
    this.entries.add(id, { ...meta, offset: this.size, length });
    this.size += length;
    if (hold) {
      if (!this.holds.has(hold)) {
        hold.retain();
        this.holds.add(hold);
      }
      for (const b of data) this.append(b);
      return;
    }
    let buf = this.own.at(-1);
    if (!buf || this.ownSize + length > buf.length) {
      buf = packBuffers.take(Math.max(length, OWN_BUFFER));
      this.own.push(buf);
      this.ownSize = 0;
    }
    const at = this.ownSize;
    for (const b of data) this.ownSize += b.copy(buf, this.ownSize);
    this.append(buf.subarray(at, this.ownSize));
  }

  /** Appends bytes to the pack: to the last part when they follow it in the same memory. */
  private append(b: Buffer): void {
    this.hash.update(b);
    const last = this.parts.at(-1);
    if (last && last.buffer === b.buffer && last.byteOffset + last.length === b.byteOffset) {
      this.parts[this.parts.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + b.length);
    } else this.parts.push(b);
  }

  /**
   * Appends the sealed header and trailer. `entries` is the header's table, its one group naming
   * the pack (for the index). Once the parts are stored (or abandoned), `release()` gives back the
   * buffers they are in; nothing may read them after.
   */
  finish(metaKey: Buffer): {
    id: string;
    parts: Buffer[];
    size: number;
    entries: EntryTable;
    release: () => void;
  } {
    const table = this.entries.finish();
    const header = seal(metaKey, table.bytes, HEADER_AAD);
    const trailer = Buffer.alloc(TRAILER_BYTES);
    trailer.writeUInt32LE(header.length, 0);
    MAGIC.copy(trailer, 4);
    this.hash.update(header);
    const id = this.hash.update(trailer).digest('hex');
    const parts = [...this.parts, header, trailer];
    const own = [...this.own];
    const holds = [...this.holds];
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      for (const b of own) packBuffers.give(b);
      for (const h of holds) h.release();
    };
    return {
      id,
      parts,
      size: this.size + header.length + TRAILER_BYTES,
      entries: { ...table, groups: [{ ...table.groups[0]!, pack: id }] },
      release,
    };
  }
}

/** Parses the header from the end of `tail`: the whole pack or just its last bytes. */
export function parsePackHeader(metaKey: Buffer, key: string, tail: Buffer, packSize: number): BlobEntry[] {
  const bad = (why: string) => new CorruptionError(`${key}: ${why}`, { object: key });
  if (tail.length < TRAILER_BYTES || !tail.subarray(tail.length - 4).equals(MAGIC)) {
    throw bad('no pack trailer');
  }
  const headerLen = tail.readUInt32LE(tail.length - TRAILER_BYTES);
  if (headerLen + TRAILER_BYTES > tail.length) throw bad('header length out of range');
  const sealed = tail.subarray(tail.length - TRAILER_BYTES - headerLen, tail.length - TRAILER_BYTES);
  const plain = open(metaKey, sealed, HEADER_AAD);
  if (!plain) throw bad('header fails authentication');
  const id = packIdOf(key);
  const dataEnd = packSize - TRAILER_BYTES - headerLen;
  let entries: BlobEntry[];
  if (plain[0] === JSON_TABLE) {
    const header = JSON.parse(plain.toString('utf8')) as { version: number; blobs: PackedBlob[] };
    entries = header.blobs.map((b) => fromPacked(id, b));
  } else {
    try {
      entries = groupEntries(decodeTable(plain, false), 0, id);
    } catch (err) {
      throw bad(`header is malformed (${(err as Error).message})`);
    }
  }
  for (const e of entries) {
    if (e.offset < 0 || e.offset + e.length > dataEnd) throw bad(`blob ${e.id} lies outside the pack`);
  }
  return entries;
}

/** Reads only a pack's header (two range reads): how the index is rebuilt from packs alone. */
export async function readPackHeader(
  storage: Storage,
  metaKey: Buffer,
  key: string,
  size: number,
): Promise<BlobEntry[]> {
  if (size < TRAILER_BYTES) throw new CorruptionError(`${key}: too short for a pack`, { object: key });
  const trailer = await getBuffer(storage, key, { offset: size - TRAILER_BYTES, length: TRAILER_BYTES });
  const headerLen = trailer.readUInt32LE(0);
  if (headerLen + TRAILER_BYTES > size) {
    throw new CorruptionError(`${key}: header length out of range`, { object: key });
  }
  const start = size - TRAILER_BYTES - headerLen;
  const tail = await getBuffer(storage, key, { offset: start, length: headerLen + TRAILER_BYTES });
  return parsePackHeader(metaKey, key, tail, size);
}

/** Checks a whole pack: its name is the SHA-256 of its bytes and its header opens. */
export function verifyPackBytes(metaKey: Buffer, key: string, bytes: Buffer): BlobEntry[] {
  if (sha256Hex(bytes) !== packIdOf(key)) {
    throw new CorruptionError(`${key}: content does not match its name (SHA-256)`, { object: key });
  }
  return parsePackHeader(metaKey, key, bytes, bytes.length);
}

/** Throws CorruptionError unless the pack's own header lists every blob the index places in it, where the index says. */
export function checkHeaderAgainstIndex(key: string, header: BlobEntry[], indexed: BlobEntry[]): void {
  const byId = new Map(header.map((h) => [h.id, h]));
  for (const e of indexed) {
    const h = byId.get(e.id);
    if (!h || h.offset !== e.offset || h.length !== e.length || h.flags !== e.flags) {
      throw new CorruptionError(`${key}: header disagrees with the index about blob ${e.id}`, {
        object: key,
      });
    }
  }
}
