/** Index objects map blob id → pack, offset, length; every index/ object is merged into one in-memory map. */
import { CorruptionError } from '../../errors.js';
import { getBuffer, type Storage } from '../../storage/types.js';
import type { BlobEntry } from './blob.js';
import { open, seal, sha256Hex } from './crypto.js';
import { IdTable } from './id-table.js';
import { decodeTable, ENTRY_BYTES, groupEntries, TableBuilder, type EntryTable } from './entries.js';
import { fromPacked, JSON_TABLE, type PackedBlob } from './pack.js';

export const INDEX_PREFIX = 'index/';
const INDEX_AAD = 'wedvault-index-v1';

interface IndexFile {
  version: 1;
  packs: { id: string; blobs: PackedBlob[] }[];
}

/**
 * Seals an index of packs, given as their headers' tables (each one group naming its pack); its
 * name is the SHA-256 of its bytes, so a changed byte shows twice. `table` is what it lists.
 */
export function encodeIndex(
  metaKey: Buffer,
  packs: EntryTable[],
): { key: string; bytes: Buffer; table: EntryTable } {
  const builder = new TableBuilder();
  for (const t of packs) {
    for (const [g, group] of t.groups.entries()) {
      builder.group(group.pack);
      builder.addGroup(t, g);
    }
  }
  const table = builder.finish();
  const bytes = seal(metaKey, table.bytes, INDEX_AAD);
  return { key: `${INDEX_PREFIX}${sha256Hex(bytes)}`, bytes, table };
}

/** An index object opened: a JSON (format 1) list of packs, or a binary (format 2) entry table. */
function openIndex(
  metaKey: Buffer,
  key: string,
  bytes: Buffer,
): { packs: { id: string; blobs: BlobEntry[] }[] } | { table: EntryTable } {
  if (sha256Hex(bytes) !== key.slice(INDEX_PREFIX.length)) {
    throw new CorruptionError(`${key}: content does not match its name (SHA-256)`, { object: key });
  }
  const plain = open(metaKey, bytes, INDEX_AAD);
  if (!plain) throw new CorruptionError(`${key}: fails authentication`, { object: key });
  if (plain[0] !== JSON_TABLE) {
    try {
      return { table: decodeTable(plain, true) };
    } catch (err) {
      throw new CorruptionError(`${key}: malformed (${(err as Error).message})`, { object: key });
    }
  }
  const file = JSON.parse(plain.toString('utf8')) as IndexFile;
  if (file.version !== 1) throw new CorruptionError(`${key}: unknown index version`, { object: key });
  return { packs: file.packs.map((p) => ({ id: p.id, blobs: p.blobs.map((b) => fromPacked(p.id, b)) })) };
}

export function decodeIndex(
  metaKey: Buffer,
  key: string,
  bytes: Buffer,
): { id: string; blobs: BlobEntry[] }[] {
  const opened = openIndex(metaKey, key, bytes);
  if ('packs' in opened) return opened.packs;
  const t = opened.table;
  return t.groups.map((g, i) => ({ id: g.pack!, blobs: groupEntries(t, i, g.pack!) }));
}

/** Per blob in RepoIndex: pack, offset, length, rawLength, flags, key set (both as numbers), state. */
const FIELDS = 7;
const PACK = 0;
const KEY_SET = 5;
const STATE = 6;
/** State: stored (an index object holds the blob), or the number of the writer that claimed it. */
const STORED = 0;

/**
 * The merged view of every index object read so far. Entries live in flat arrays (ids in an
 * IdTable, fields as u32 columns, pack names and key sets interned): a BlobEntry object is made
 * only when asked for.
 */
export class RepoIndex {
  private ids = new IdTable();
  private fields = new Uint32Array(FIELDS * 1024);
  private readonly packNames: string[] = [];
  private readonly packNumbers = new Map<string, number>();
  private readonly keySets: { scopeHash: string; keyId: string }[] = [];
  private readonly keySetNumbers = new Map<string, number>();
  private readonly otherKeySets = new Map<string, number>();
  /** Index object → the packs it lists; pack → the index objects listing it. */
  readonly packsOf = new Map<string, string[]>();
  readonly indexesOf = new Map<string, string[]>();
  /** Index objects that failed to load: the writer re-stores their blobs, the reader names them. */
  readonly bad = new Map<string, CorruptionError>();
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly storage: Storage,
    private readonly metaKey: Buffer,
  ) {}

  /** Blobs held by index objects (claimed ones not counted). */
  get size(): number {
    let n = 0;
    for (let i = 0; i < this.ids.count; i++) if (this.fields[i * FIELDS + STATE] === STORED) n++;
    return n;
  }

  get(id: string): BlobEntry | undefined {
    const n = this.find(id);
    if (n < 0) return undefined;
    const f = this.fields.subarray(n * FIELDS, (n + 1) * FIELDS);
    const { scopeHash, keyId } = this.keysOf(n);
    return {
      id,
      pack: this.packOf(n),
      offset: f[1]!,
      length: f[2]!,
      rawLength: f[3]!,
      flags: f[4]!,
      scopeHash,
      keyId,
    };
  }

  /** The entry number of a stored blob, or -1: for walks over many blobs that need only pack and key set. */
  find(id: string | Buffer): number {
    const n = this.ids.find(id);
    return n >= 0 && this.fields[n * FIELDS + STATE] === STORED ? n : -1;
  }

  /**
   * A writer's dedup step, one table for the repository and every open write session: true when
   * `writer` should store the blob (not stored, and not claimed by this writer before; a claim by
   * another writer does not count, since that writer may still fail), false when it may refer to it.
   * A claim ends when an index object lists the blob; a failed writer's claims stay and count for
   * no one.
   */
  claim(id: Buffer, writer: number): boolean {
    let n = this.ids.find(id);
    if (n < 0) {
      n = this.ids.add(id);
      this.grow(n);
    } else {
      const state = this.fields[n * FIELDS + STATE]!;
      if (state === STORED || state === writer) return false;
    }
    this.fields[n * FIELDS + STATE] = writer;
    return true;
  }

  packOf(n: number): string {
    return this.packNames[this.fields[n * FIELDS + PACK]!]!;
  }

  /** The entry's key set, one shared object per key set. */
  keysOf(n: number): { readonly scopeHash: string; readonly keyId: string } {
    return this.keySets[this.fields[n * FIELDS + KEY_SET]!]!;
  }

  /** Reads index objects not seen yet; index objects never change, so nothing is read twice. */
  refresh(): Promise<void> {
    this.refreshing ??= this.load().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async load(): Promise<void> {
    // known before the listing starts: an index this process writes meanwhile is not yet listed
    const known = [...this.packsOf.keys(), ...this.bad.keys()];
    const listed: string[] = [];
    for await (const o of this.storage.list(INDEX_PREFIX)) listed.push(o.key);
    // An index object gone means a prune ran: the blobs it listed may be gone too, and a writer
    // that still counted them as stored would refer to them. Everything is read again.
    const names = new Set(listed);
    if (known.some((k) => !names.has(k))) this.reset();
    const keys = listed.filter((k) => !this.packsOf.has(k) && !this.bad.has(k));
    for (const key of keys) {
      try {
        const opened = openIndex(this.metaKey, key, await getBuffer(this.storage, key));
        if ('packs' in opened) this.add(key, opened.packs);
        else this.addTable(key, opened.table);
      } catch (err) {
        if (!(err instanceof CorruptionError)) throw err;
        this.bad.set(key, err);
      }
    }
  }

  /** Forgets every entry (claims too: a writer then stores a blob twice at worst). */
  private reset(): void {
    this.ids = new IdTable();
    this.fields = new Uint32Array(FIELDS * 1024);
    this.packNames.length = 0;
    this.packNumbers.clear();
    this.keySets.length = 0;
    this.keySetNumbers.clear();
    this.otherKeySets.clear();
    this.packsOf.clear();
    this.indexesOf.clear();
    this.bad.clear();
  }

  /** Entry numbers run from 0 to this (claimed ones included: find() and stored() tell them apart). */
  get entryCount(): number {
    return this.ids.count;
  }

  stored(n: number): boolean {
    return this.fields[n * FIELDS + STATE] === STORED;
  }

  /** The entry's pack as a number (0 ‥ packCount − 1), its length, its key set as a number. */
  packNumberOf(n: number): number {
    return this.fields[n * FIELDS + PACK]!;
  }

  lengthOf(n: number): number {
    return this.fields[n * FIELDS + 2]!;
  }

  keySetNumberOf(n: number): number {
    return this.fields[n * FIELDS + KEY_SET]!;
  }

  /** Every key set entries name, by number. */
  get keySetList(): readonly { readonly scopeHash: string; readonly keyId: string }[] {
    return this.keySets;
  }

  /** Every pack entries name, by number. */
  get packList(): readonly string[] {
    return this.packNames;
  }

  /** The entry's blob id (hex). */
  idOf(n: number): string {
    return this.ids.idAt(n);
  }

  add(key: string, packs: { id: string; blobs: BlobEntry[] }[]): void {
    this.packsOf.set(
      key,
      packs.map((p) => p.id),
    );
    for (const p of packs) {
      const pack = this.listPack(key, p.id);
      for (const b of p.blobs) {
        const n = this.entryFor(b.id);
        if (n < 0) continue;
        const keySet = this.keySetNumber(b.scopeHash, b.keyId);
        this.fields.set([pack, b.offset, b.length, b.rawLength, b.flags, keySet, STORED], n * FIELDS);
      }
    }
  }

  /** A binary index object's entries, read in place: no object or hex string per entry. */
  addTable(key: string, t: EntryTable): void {
    this.packsOf.set(
      key,
      t.groups.map((g) => g.pack!),
    );
    const keySets = t.keySets.map((k) => this.keySetNumber(k.scopeHash, k.keyId));
    const b = t.bytes;
    for (const g of t.groups) {
      const pack = this.listPack(key, g.pack!);
      for (let i = 0, p = g.at; i < g.count; i++, p += ENTRY_BYTES) {
        const n = this.entryFor(b.subarray(p, p + 32));
        if (n < 0) continue;
        const f = n * FIELDS;
        this.fields[f + PACK] = pack;
        this.fields[f + 1] = b.readUInt32LE(p + 32);
        this.fields[f + 2] = b.readUInt32LE(p + 36);
        this.fields[f + 3] = b.readUInt32LE(p + 40);
        this.fields[f + 4] = b[p + 44]!;
        this.fields[f + KEY_SET] = keySets[b.readUInt32LE(p + 45)]!;
        this.fields[f + STATE] = STORED;
      }
    }
  }

  /** Records that index object `key` lists `pack`; the pack's number. */
  private listPack(key: string, pack: string): number {
    const list = this.indexesOf.get(pack) ?? [];
    list.push(key);
    this.indexesOf.set(pack, list);
    let n = this.packNumbers.get(pack);
    if (n === undefined) {
      n = this.packNames.push(pack) - 1;
      this.packNumbers.set(pack, n);
    }
    return n;
  }

  /**
   * The entry number to fill for a blob an index object lists, or -1 when an earlier index object
   * holds it (the first entry wins).
   */
  private entryFor(id: string | Buffer): number {
    let n = this.ids.find(id);
    if (n >= 0 && this.fields[n * FIELDS + STATE] === STORED) return -1;
    if (n < 0) {
      n = this.ids.add(id);
      this.grow(n);
    }
    return n;
  }

  /**
   * The number of a key set: by scope hash for the scope's first key set (the blob entry's own
   * string is the map key, so a backup of every wedding makes no string per key set), by
   * hash and key id for any other.
   */
  private keySetNumber(scopeHash: string, keyId: string): number {
    const first = this.keySetNumbers.get(scopeHash);
    if (first === undefined) {
      const n = this.keySets.push({ scopeHash, keyId }) - 1;
      this.keySetNumbers.set(scopeHash, n);
      return n;
    }
    if (this.keySets[first]!.keyId === keyId) return first;
    const other = `${scopeHash}/${keyId}`;
    let n = this.otherKeySets.get(other);
    if (n === undefined) {
      n = this.keySets.push({ scopeHash, keyId }) - 1;
      this.otherKeySets.set(other, n);
    }
    return n;
  }

  private grow(n: number): void {
    if ((n + 1) * FIELDS <= this.fields.length) return;
    const grown = new Uint32Array(this.fields.length * 2);
    grown.set(this.fields);
    this.fields = grown;
  }
}
