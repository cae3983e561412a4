/** Pack objects: many encrypted blobs then a sealed header listing them, named by the SHA-256 of their bytes. */
import { createHash, type Hash } from 'node:crypto';
import { CorruptionError } from '../../errors.js';
import { getBuffer, type Storage } from '../../storage/types.js';
import type { BlobEntry } from './blob.js';
import { packBuffers } from './buffers.js';
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

/**
 * Collects blobs in memory until the pack is big enough to upload. Blobs are copied into one
 * buffer as they arrive (sized for a full pack, grown in the rare case a big blob overflows it), so
 * the encoder's reply buffers are released at once and sealing needs no second copy of the pack.
 */
export class PackBuilder {
  private buf: Buffer | undefined;
  private readonly entries = new TableBuilder().group();
  /** SHA-256 of the bytes so far, fed as blobs arrive while they are still in cache. */
  private readonly hash: Hash = createHash('sha256');
  size = 0;

  constructor(private readonly capacity = 16 * 1024 * 1024) {}

  get count(): number {
    return this.entries.count;
  }

  /**
   * Whether a blob of `length` bytes, and the header that will list it, still fit the buffer. A
   * writer seals the pack first when not: growing would double the buffer, and the buffer pool
   * would then hand out (and keep) the doubled size.
   */
  fits(length: number): boolean {
    // a header entry is 49 bytes, plus at most one key set (~100 bytes) of its own; sealing adds
    // 28 bytes and the trailer 8
    const header = (this.entries.count + 1) * 160 + 1024;
    return this.size + length + header <= this.capacity;
  }

  add(id: string, data: Buffer[], meta: Omit<BlobEntry, 'id' | 'pack' | 'offset' | 'length'>): void {
    const length = data.reduce((n, b) => n + b.length, 0);
    this.reserve(length);
    this.entries.add(id, { ...meta, offset: this.size, length });
    const at = this.size;
    for (const b of data) this.size += b.copy(this.buf!, this.size);
    this.hash.update(this.buf!.subarray(at, this.size));
  }

  /**
   * Appends the sealed header and trailer. `entries` is the header's table, its one group naming
   * the pack (for the index).
   */
  finish(metaKey: Buffer): { id: string; bytes: Buffer; entries: EntryTable } {
    const table = this.entries.finish();
    const header = seal(metaKey, table.bytes, HEADER_AAD);
    const trailer = Buffer.alloc(TRAILER_BYTES);
    trailer.writeUInt32LE(header.length, 0);
    MAGIC.copy(trailer, 4);
    const dataEnd = this.size;
    this.reserve(header.length + TRAILER_BYTES);
    header.copy(this.buf!, dataEnd);
    trailer.copy(this.buf!, dataEnd + header.length);
    const bytes = this.buf!.subarray(0, dataEnd + header.length + TRAILER_BYTES);
    this.buf = undefined;
    const id = this.hash.update(bytes.subarray(dataEnd)).digest('hex');
    return { id, bytes, entries: { ...table, groups: [{ ...table.groups[0]!, pack: id }] } };
  }

  private reserve(more: number): void {
    const need = this.size + more;
    if (this.buf && need <= this.buf.length) return;
    const grown = this.buf
      ? Buffer.allocUnsafeSlow(Math.max(need, this.buf.length * 2))
      : packBuffers.take(Math.max(need, this.capacity));
    this.buf?.copy(grown, 0, 0, this.size);
    this.buf = grown;
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
