/**
 * Blob entry tables in binary (format 2), as pack headers and index objects hold them: the key sets
 * once, then per pack its 49-byte entries. The JSON form (format 1) named a 64-character scope hash
 * and a key id in every entry (~190 bytes each); a snapshot of every wedding lists a few hundred
 * thousand entries, in its packs and again in its indexes.
 *
 *   plain   = 0x02 ‖ u32 keySetCount ‖ keySet* ‖ u32 groupCount ‖ group*
 *   keySet  = u8 hashLength ‖ scopeHash ‖ u8 keyIdLength ‖ keyId (UTF-8)
 *   group   = [packId (32 bytes), index only] ‖ u32 entryCount ‖ entry*
 *   entry   = id (32) ‖ u32 offset ‖ u32 length ‖ u32 rawLength ‖ u8 flags ‖ u32 keySet
 *
 * Integers are little-endian. A JSON table starts with `{`, a binary one with 0x02: readers take both.
 */
import type { BlobEntry } from './blob.js';

export const BINARY_TABLE = 2;
export const ENTRY_BYTES = 32 + 4 + 4 + 4 + 1 + 4;

/** An index entry as a table stores it: the pack is the group's, not the entry's. */
export type EntryFields = Omit<BlobEntry, 'pack'>;

/** A decoded table: entries stay in `bytes`, read with the accessors below (no object per entry). */
export interface EntryTable {
  keySets: { scopeHash: string; keyId: string }[];
  groups: { pack: string | undefined; at: number; count: number }[];
  bytes: Buffer;
}

const checkHex = (what: string, h: string, length?: number): Buffer => {
  const b = Buffer.from(h, 'hex');
  if ((length !== undefined && b.length !== length) || b.length > 255 || b.toString('hex') !== h)
    throw new RangeError(`${what} is not ${length ?? 'up to 255'} bytes of lowercase hex: ${h}`);
  return b;
};

/**
 * Builds a table entry by entry: the fields go straight into bytes and each key set is numbered
 * once, so a pack or index of many thousand blobs makes no object per blob.
 */
export class TableBuilder {
  private readonly numbers = new Map<string, Map<string, number>>();
  private readonly keySets: { scopeHash: string; keyId: string }[] = [];
  private readonly groups: { pack: string | undefined; count: number }[] = [];
  private entries = Buffer.allocUnsafeSlow(0);
  /** Entries added, in every group. */
  count = 0;

  /** Starts a group: the entries added next belong to it (index objects name its pack). */
  group(pack?: string): this {
    if (pack !== undefined) checkHex('a pack id', pack, 32);
    this.groups.push({ pack, count: 0 });
    return this;
  }

  add(id: string, fields: Omit<EntryFields, 'id'>): void {
    const p = this.room();
    // hex decoding stops at the first non-hex character: 32 bytes from 64 characters is exact
    if (id.length !== 64 || this.entries.write(id, p, 32, 'hex') !== 32)
      throw new RangeError(`a blob id is not 32 bytes of hex: ${id}`);
    this.entries.writeUInt32LE(fields.offset, p + 32);
    this.entries.writeUInt32LE(fields.length, p + 36);
    this.entries.writeUInt32LE(fields.rawLength, p + 40);
    this.entries.writeUInt8(fields.flags, p + 44);
    this.entries.writeUInt32LE(this.numberOf(fields.scopeHash, fields.keyId), p + 45);
    this.counted();
  }

  /** Copies group `g` of a decoded table into the open group, its key sets renumbered. */
  addGroup(t: EntryTable, g: number): void {
    const numbers = t.keySets.map((k) => this.numberOf(k.scopeHash, k.keyId));
    const { at, count } = t.groups[g]!;
    for (let i = 0; i < count; i++) {
      const from = at + i * ENTRY_BYTES;
      const p = this.room();
      t.bytes.copy(this.entries, p, from, from + 45);
      this.entries.writeUInt32LE(numbers[t.bytes.readUInt32LE(from + 45)]!, p + 45);
      this.counted();
    }
  }

  /** The table: its bytes, and where its groups lie in them (as decodeTable() would read it). */
  finish(): EntryTable {
    const keyIds = this.keySets.map((k) => Buffer.from(k.keyId, 'utf8'));
    const hashes = this.keySets.map((k) => checkHex('a scope hash', k.scopeHash));
    const size =
      1 +
      4 +
      keyIds.reduce((n, id, i) => n + 2 + hashes[i]!.length + id.length, 0) +
      4 +
      this.groups.reduce((n, g) => n + (g.pack === undefined ? 0 : 32) + 4, 0) +
      this.count * ENTRY_BYTES;
    const out = Buffer.alloc(size);
    let p = out.writeUInt8(BINARY_TABLE, 0);
    p = out.writeUInt32LE(this.keySets.length, p);
    for (const [i, k] of this.keySets.entries()) {
      p = out.writeUInt8(hashes[i]!.length, p);
      p += hashes[i]!.copy(out, p);
      if (keyIds[i]!.length > 255) throw new RangeError(`key id too long: ${k.keyId}`);
      p = out.writeUInt8(keyIds[i]!.length, p);
      p += keyIds[i]!.copy(out, p);
    }
    p = out.writeUInt32LE(this.groups.length, p);
    let from = 0;
    const groups: EntryTable['groups'] = [];
    for (const g of this.groups) {
      if (g.pack !== undefined) p += out.write(g.pack, p, 32, 'hex');
      p = out.writeUInt32LE(g.count, p);
      groups.push({ pack: g.pack, at: p, count: g.count });
      p += this.entries.copy(out, p, from, from + g.count * ENTRY_BYTES);
      from += g.count * ENTRY_BYTES;
    }
    return { keySets: [...this.keySets], groups, bytes: out };
  }

  /** Where the next entry goes, with room made for it; it counts once written (counted()). */
  private room(): number {
    if (this.groups.length === 0) throw new RangeError('an entry needs a group');
    const p = this.count * ENTRY_BYTES;
    if (p + ENTRY_BYTES > this.entries.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(64 * ENTRY_BYTES, this.entries.length * 2));
      this.entries.copy(grown, 0, 0, p);
      this.entries = grown;
    }
    return p;
  }

  private counted(): void {
    this.groups[this.groups.length - 1]!.count++;
    this.count++;
  }

  private numberOf(scopeHash: string, keyId: string): number {
    let byId = this.numbers.get(scopeHash);
    if (!byId) this.numbers.set(scopeHash, (byId = new Map()));
    let n = byId.get(keyId);
    if (n === undefined) {
      n = this.keySets.push({ scopeHash, keyId }) - 1;
      byId.set(keyId, n);
    }
    return n;
  }
}

/** Reads a binary table; `withPacks`: groups carry pack ids (index objects). Throws RangeError when malformed. */
export function decodeTable(bytes: Buffer, withPacks: boolean): EntryTable {
  const need = (p: number, n: number) => {
    if (p + n > bytes.length) throw new RangeError('entry table ends early');
  };
  if (bytes[0] !== BINARY_TABLE) throw new RangeError(`unknown entry table format ${bytes[0]}`);
  let p = 1;
  need(p, 4);
  const keySetCount = bytes.readUInt32LE(p);
  p += 4;
  const keySets: EntryTable['keySets'] = [];
  for (let i = 0; i < keySetCount; i++) {
    need(p, 1);
    const hashLength = bytes[p]!;
    need(p, hashLength + 2);
    const scopeHash = bytes.toString('hex', p + 1, p + 1 + hashLength);
    const len = bytes[p + 1 + hashLength]!;
    p += hashLength + 2;
    need(p, len);
    keySets.push({ scopeHash, keyId: bytes.toString('utf8', p, p + len) });
    p += len;
  }
  need(p, 4);
  const groupCount = bytes.readUInt32LE(p);
  p += 4;
  const groups: EntryTable['groups'] = [];
  for (let i = 0; i < groupCount; i++) {
    let pack: string | undefined;
    if (withPacks) {
      need(p, 32);
      pack = bytes.toString('hex', p, p + 32);
      p += 32;
    }
    need(p, 4);
    const count = bytes.readUInt32LE(p);
    p += 4;
    need(p, count * ENTRY_BYTES);
    for (let e = 0; e < count; e++) {
      if (bytes.readUInt32LE(p + e * ENTRY_BYTES + 45) >= keySets.length)
        throw new RangeError('entry names no key set');
    }
    groups.push({ pack, at: p, count });
    p += count * ENTRY_BYTES;
  }
  if (p !== bytes.length) throw new RangeError('entry table has trailing bytes');
  return { keySets, groups, bytes };
}

/** Entry `i` of a group: its id bytes (a view) and fields. */
export function entryAt(
  t: EntryTable,
  group: number,
  i: number,
): { id: Buffer; offset: number; length: number; rawLength: number; flags: number; keySet: number } {
  const p = t.groups[group]!.at + i * ENTRY_BYTES;
  const b = t.bytes;
  return {
    id: b.subarray(p, p + 32),
    offset: b.readUInt32LE(p + 32),
    length: b.readUInt32LE(p + 36),
    rawLength: b.readUInt32LE(p + 40),
    flags: b[p + 44]!,
    keySet: b.readUInt32LE(p + 45),
  };
}

/** A group's entries as BlobEntry objects (for checks and repairs; the index reads them in place). */
export function groupEntries(t: EntryTable, group: number, pack: string): BlobEntry[] {
  const out: BlobEntry[] = [];
  for (let i = 0; i < t.groups[group]!.count; i++) {
    const e = entryAt(t, group, i);
    const k = t.keySets[e.keySet]!;
    out.push({
      id: e.id.toString('hex'),
      pack,
      offset: e.offset,
      length: e.length,
      rawLength: e.rawLength,
      flags: e.flags,
      scopeHash: k.scopeHash,
      keyId: k.keyId,
    });
  }
  return out;
}
