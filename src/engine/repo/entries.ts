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

const hexBytes = (what: string, h: string, length?: number): Buffer => {
  const b = Buffer.from(h, 'hex');
  if ((length !== undefined && b.length !== length) || b.length > 255 || b.toString('hex') !== h)
    throw new RangeError(`${what} is not ${length ?? 'up to 255'} bytes of lowercase hex: ${h}`);
  return b;
};

export function encodeTable(groups: { pack?: string; blobs: EntryFields[] }[]): Buffer {
  // key set numbers by scope hash, then key id: no string made per entry
  const numbers = new Map<string, Map<string, number>>();
  const keySets: { scopeHash: string; keyId: string }[] = [];
  const numberOf = (scopeHash: string, keyId: string): number => {
    let byId = numbers.get(scopeHash);
    if (!byId) numbers.set(scopeHash, (byId = new Map()));
    let n = byId.get(keyId);
    if (n === undefined) {
      n = keySets.push({ scopeHash, keyId }) - 1;
      byId.set(keyId, n);
    }
    return n;
  };
  let entries = 0;
  const sets = groups.map((g) => {
    entries += g.blobs.length;
    return g.blobs.map((b) => numberOf(b.scopeHash, b.keyId));
  });
  const keyIds = keySets.map((k) => Buffer.from(k.keyId, 'utf8'));
  const hashes = keySets.map((k) => hexBytes('a scope hash', k.scopeHash));
  const size =
    1 +
    4 +
    keyIds.reduce((n, id, i) => n + 2 + hashes[i]!.length + id.length, 0) +
    4 +
    groups.reduce((n, g) => n + (g.pack === undefined ? 0 : 32) + 4, 0) +
    entries * ENTRY_BYTES;
  const out = Buffer.alloc(size);
  let p = out.writeUInt8(BINARY_TABLE, 0);
  p = out.writeUInt32LE(keySets.length, p);
  for (const [i, k] of keySets.entries()) {
    p = out.writeUInt8(hashes[i]!.length, p);
    p += hashes[i]!.copy(out, p);
    if (keyIds[i]!.length > 255) throw new RangeError(`key id too long: ${k.keyId}`);
    p = out.writeUInt8(keyIds[i]!.length, p);
    p += keyIds[i]!.copy(out, p);
  }
  p = out.writeUInt32LE(groups.length, p);
  const id32 = (what: string, hex: string) => {
    // hex decoding stops at the first non-hex character: 32 bytes from 64 characters is exact
    if (hex.length !== 64 || out.write(hex, p, 32, 'hex') !== 32) {
      throw new RangeError(`${what} is not 32 bytes of hex: ${hex}`);
    }
    p += 32;
  };
  for (const [g, group] of groups.entries()) {
    if (group.pack !== undefined) id32('a pack id', group.pack);
    p = out.writeUInt32LE(group.blobs.length, p);
    const numbered = sets[g]!;
    for (const [i, b] of group.blobs.entries()) {
      id32('a blob id', b.id);
      p = out.writeUInt32LE(b.offset, p);
      p = out.writeUInt32LE(b.length, p);
      p = out.writeUInt32LE(b.rawLength, p);
      p = out.writeUInt8(b.flags, p);
      p = out.writeUInt32LE(numbered[i]!, p);
    }
  }
  return out;
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
