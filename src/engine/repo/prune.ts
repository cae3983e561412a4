/**
 * Forget and prune: snapshots are deleted, then every blob no remaining snapshot names (or whose
 * key set was erased) leaves the repository: unused packs are deleted, mostly unused ones repacked.
 *
 * Safety beside backups rests on two things (docs/FORMAT.md §10):
 * - the lock: prune holds an exclusive lock from before it reads the index until its last delete.
 *   A backup's writer holds a write lock for its whole session, so no backup runs meanwhile; this is
 *   what makes dedup safe, since a backup that started after the mark could otherwise refer to an
 *   old unreferenced blob that prune then deletes (no age rule can protect an old blob);
 * - a grace period: packs younger than `graceMs` are never deleted or repacked, so a writer that
 *   holds no lock (or whose lock was broken as stale) keeps the packs it wrote before its index.
 *
 * Order, so that a prune killed at any point leaves a repository that checks clean and the next one
 * finishes the work: new packs (orphans until indexed) → sync → new index objects → old index
 * objects → sync → old packs. Until an old index is deleted every pack it names exists; once it is
 * deleted, the new index lists every kept pack it named and the repacked copies of used blobs.
 */
import { ConflictError, CorruptionError, ValidationError } from '../../errors.js';
import { getBuffer, type Storage } from '../../storage/types.js';
import { TableBuilder, type EntryTable } from './entries.js';
import { IdTable } from './id-table.js';
import { decodeIndex, INDEX_PREFIX, type RepoIndex } from './index.js';
import { RepoLock } from './lock.js';
import { DATA_PREFIX, PackBuilder, packIdOf, packKey, readPackHeader } from './pack.js';
import { RepoReader } from './reader.js';
import { blobIdBatches, snapshotKey, SNAPSHOTS_PREFIX, type Snapshot } from './snapshot.js';
import { sha256Hex, seal } from './crypto.js';
import type { RepoContext } from './writer.js';

export interface PruneOptions {
  /** Plan and report only: nothing is written or deleted, no lock is taken. */
  dryRun?: boolean;
  /** A pack whose unused bytes exceed this share of it is repacked (default 0.2). */
  repackThreshold?: number;
  /** Packs younger than this are kept whatever they hold (default one hour). */
  graceMs?: number;
  /** How long to wait for running backups' locks (default 0: refuse at once with ConflictError). */
  lockWaitMs?: number;
  /** Repacked blobs go into packs of about this size (default 12 MiB, as backups write). */
  packSize?: number;
  onProgress?: (p: PruneProgress) => void;
}

export type PrunePhase = 'mark' | 'plan' | 'repack' | 'index' | 'delete-index' | 'delete-pack';

export interface PruneProgress {
  phase: PrunePhase;
  done: number;
  total: number;
}

export interface PruneResult {
  dryRun: boolean;
  snapshots: number;
  /** Blobs the snapshots name that no index holds (an erased scope's, once pruned): reported, never fatal. */
  missingBlobs: number;
  /** Blobs whose key set is gone from every bundle: unused, whatever names them. */
  erasedBlobs: number;
  packsDeleted: number;
  packsRepacked: number;
  packsWritten: number;
  /**
   * Packs no index names, deleted (older than the grace period and holding nothing a snapshot
   * needs); a dry run counts every old one.
   */
  orphansDeleted: number;
  /** Packs left alone because they are younger than the grace period. */
  packsTooYoung: number;
  blobsRemoved: number;
  /** Pack bytes: deleted, less the repacked packs written (a dry run estimates the latter by their blobs). */
  bytesFreed: number;
  indexesWritten: number;
  indexesDeleted: number;
  durationMs: number;
}

const DEFAULTS = {
  dryRun: false,
  repackThreshold: 0.2,
  graceMs: 60 * 60_000,
  lockWaitMs: 0,
  packSize: 12 * 1024 * 1024,
};

/** An index object covers at most this many blobs, as a writer's do. */
const INDEX_BLOBS = 65536;
const INDEX_AAD = 'wedvault-index-v1';

/** Deletes snapshot objects; deleting one already gone is not an error. Returns the keys deleted. */
export async function forgetSnapshots(storage: Storage, ids: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const id of ids) {
    if (!/^[0-9a-f]{32}$/.test(id)) throw new ValidationError(`not a snapshot id: ${id}`);
    await storage.delete(snapshotKey(id));
    out.push(snapshotKey(id));
  }
  await storage.sync?.();
  return out;
}

/** One pack as the listing and the index see it. */
interface PackState {
  key: string;
  size: number;
  young: boolean;
  /** Bytes of blobs in use (their chosen entry is in this pack, named by a snapshot, key set held). */
  usedBytes: number;
  usedBlobs: number;
  /** Bytes of its chosen entries that are not in use (a copy of a blob another pack holds is not counted). */
  unusedBytes: number;
  blobs: number;
}

export type LoadSnapshot = (id: string) => Promise<Snapshot>;

/**
 * Prunes the repository behind `ctx`, whose index must be fresh (the caller gives it a new
 * RepoIndex and throws it away afterwards: the packs it names may be gone).
 */
export async function prune(
  ctx: RepoContext,
  loadSnapshot: LoadSnapshot,
  options: PruneOptions = {},
): Promise<PruneResult> {
  const opts = { ...DEFAULTS, ...options };
  const started = Date.now();
  const lock = opts.dryRun
    ? undefined
    : await RepoLock.acquire(ctx.storage, { exclusive: true, waitMs: opts.lockWaitMs });
  try {
    const run = new Pruner(ctx, loadSnapshot, opts);
    await run.mark();
    await run.plan();
    if (!opts.dryRun) await run.sweep();
    return { ...run.result, durationMs: Date.now() - started };
  } finally {
    await lock?.release();
  }
}

class Pruner {
  readonly result: Omit<PruneResult, 'durationMs'>;
  private readonly storage: Storage;
  private readonly index: RepoIndex;
  /** One byte per index entry: named by a snapshot. */
  private used = new Uint8Array(0);
  /** Referenced blobs no index holds: an orphan pack holding one is kept. */
  private readonly missing = new IdTable();
  /** Per key set number: erased. */
  private erased: boolean[] = [];
  private readonly packs = new Map<string, PackState>();
  private readonly orphans: PackState[] = [];
  private readonly toDelete = new Set<string>();
  private readonly toRepack = new Set<string>();

  constructor(
    private readonly ctx: RepoContext,
    private readonly loadSnapshot: LoadSnapshot,
    private readonly opts: typeof DEFAULTS & PruneOptions,
  ) {
    this.storage = ctx.storage;
    this.index = ctx.index;
    this.result = {
      dryRun: opts.dryRun,
      snapshots: 0,
      missingBlobs: 0,
      erasedBlobs: 0,
      packsDeleted: 0,
      packsRepacked: 0,
      packsWritten: 0,
      orphansDeleted: 0,
      packsTooYoung: 0,
      blobsRemoved: 0,
      bytesFreed: 0,
      indexesWritten: 0,
      indexesDeleted: 0,
    };
  }

  private progress(phase: PrunePhase, done: number, total: number): void {
    this.opts.onProgress?.({ phase, done, total });
  }

  /** Every blob a snapshot names, through its tree and record lists: one byte per index entry. */
  async mark(): Promise<void> {
    await Promise.all([this.index.refresh(), this.ctx.scopes.reload()]);
    const [bad] = this.index.bad.keys();
    // a damaged index hides which packs hold what: deleting anything could lose the only copy
    if (bad)
      throw new CorruptionError(`${bad} is damaged; repair the repository before pruning`, { object: bad });
    this.used = new Uint8Array(this.index.entryCount);
    const indexObjects = this.index.packsOf.size;
    const ids: string[] = [];
    for await (const o of this.storage.list(SNAPSHOTS_PREFIX)) ids.push(o.key.slice(SNAPSHOTS_PREFIX.length));
    const reader = new RepoReader(this.ctx);
    for (const [i, id] of ids.entries()) {
      this.progress('mark', i, ids.length);
      // an unreadable snapshot throws: what it needs cannot be known, so nothing may go
      const snap = await this.loadSnapshot(id);
      if (snap.treeRef) this.markBlobs(snap.treeRef.blobs);
      // the walk object lists use: record lists are scanned for ids, not parsed
      for await (const batch of blobIdBatches(snap.tree, reader)) this.markBlobs(batch);
    }
    // a reader refreshes the index when it misses a blob: an index object that appeared meanwhile
    // was written by a writer holding no lock, and its entries have no mark
    if (this.index.packsOf.size !== indexObjects) {
      throw new ConflictError('an index object appeared during the mark: a writer without a lock is running');
    }
    this.progress('mark', ids.length, ids.length);
    this.result.snapshots = ids.length;
    this.result.missingBlobs = this.missing.count;
  }

  private markBlobs(blobs: readonly string[]): void {
    for (const blob of blobs) {
      const n = this.index.find(blob);
      if (n >= 0) this.used[n] = 1;
      else if (this.missing.find(blob) < 0) this.missing.add(blob);
    }
  }

  /** Which packs go, which are repacked; orphans (in no index) found in the listing. */
  async plan(): Promise<void> {
    const now = Date.now();
    for await (const o of this.storage.list(DATA_PREFIX)) {
      // a store that gives no time keeps the object: it cannot be shown to be old
      const young = !o.modified || now - o.modified.getTime() < this.opts.graceMs;
      this.packs.set(packIdOf(o.key), {
        key: o.key,
        size: o.size,
        young,
        usedBytes: 0,
        unusedBytes: 0,
        usedBlobs: 0,
        blobs: 0,
      });
    }
    await this.findErased();
    const index = this.index;
    const byNumber = index.packList.map((id) => this.packs.get(id));
    for (let n = 0; n < index.entryCount; n++) {
      if (!index.stored(n)) continue;
      const p = byNumber[index.packNumberOf(n)];
      if (!p) continue;
      p.blobs++;
      const erased = this.erased[index.keySetNumberOf(n)];
      if (erased) this.result.erasedBlobs++;
      if (this.used[n] && !erased) {
        p.usedBlobs++;
        p.usedBytes += index.lengthOf(n);
      } else p.unusedBytes += index.lengthOf(n);
    }
    const indexed = new Set(index.indexesOf.keys());
    for (const [id, p] of this.packs) {
      if (p.young) {
        this.result.packsTooYoung++;
        continue;
      }
      if (!indexed.has(id)) {
        this.orphans.push(p);
        this.result.orphansDeleted++;
        this.result.bytesFreed += p.size;
      } else if (p.usedBlobs === 0) this.toDelete.add(id);
      // by blob bytes (a header is never unused): a threshold of 0 repacks any pack with an unused blob
      else if (p.unusedBytes / (p.unusedBytes + p.usedBytes) > this.opts.repackThreshold)
        this.toRepack.add(id);
    }
    for (const id of [...this.toDelete, ...this.toRepack]) {
      const p = this.packs.get(id)!;
      this.result.blobsRemoved += p.blobs - p.usedBlobs;
      this.result.bytesFreed += p.size - (this.toRepack.has(id) ? p.usedBytes : 0);
    }
    this.result.packsDeleted = this.toDelete.size;
    this.result.packsRepacked = this.toRepack.size;
    this.progress('plan', 1, 1);
  }

  /** Key sets entries name that no bundle or key object holds any more. */
  private async findErased(): Promise<void> {
    this.erased = await Promise.all(
      this.index.keySetList.map(async (k) => (await this.ctx.scopes.holds(k.scopeHash, k.keyId)) === false),
    );
  }

  async sweep(): Promise<void> {
    const newPacks = await this.repack();
    await this.storage.sync?.();
    const stale = this.staleIndexes();
    await this.writeIndexes(stale, newPacks);
    await this.storage.sync?.();
    for (const [i, key] of stale.entries()) {
      this.progress('delete-index', i, stale.length);
      await this.storage.delete(key);
    }
    this.result.indexesDeleted = stale.length;
    await this.storage.sync?.();
    const gone = [...this.toDelete, ...this.toRepack];
    for (const [i, id] of gone.entries()) {
      this.progress('delete-pack', i, gone.length);
      await this.storage.delete(packKey(id));
    }
    await this.deleteOrphans();
    this.progress('delete-pack', gone.length, gone.length);
  }

  /** Copies the used blobs of the packs to repack into new packs, sealed bytes as they are. */
  private async repack(): Promise<EntryTable[]> {
    const wanted = new Map<number, number[]>();
    const numbers = new Map(this.index.packList.map((id, i) => [id, i]));
    for (const id of this.toRepack) wanted.set(numbers.get(id)!, []);
    for (let n = 0; n < this.index.entryCount; n++) {
      if (!this.index.stored(n) || !this.used[n] || this.erased[this.index.keySetNumberOf(n)]) continue;
      wanted.get(this.index.packNumberOf(n))?.push(n);
    }
    // the plan counted the used bytes as kept; what is kept is the new packs, headers and all
    for (const id of this.toRepack) this.result.bytesFreed += this.packs.get(id)!.usedBytes;
    const written: EntryTable[] = [];
    let builder = this.newPack();
    let done = 0;
    for (const [pack, entries] of wanted) {
      this.progress('repack', done++, wanted.size);
      const key = packKey(this.index.packList[pack]!);
      const bytes = await getBuffer(this.storage, key);
      for (const n of entries) {
        const e = this.index.get(this.index.idOf(n))!;
        if (e.offset + e.length > bytes.length)
          throw new CorruptionError(`${key}: shorter than its index says`, { object: key });
        if (!builder.fits(e.length)) {
          if (builder.count > 0) written.push(await this.store(builder));
          builder = this.newPack(e.length);
        }
        // the blob's AAD binds its id, scope and key set, not its pack: its bytes move as they are
        const { id, rawLength, flags, scopeHash, keyId } = e;
        builder.add(id, [bytes.subarray(e.offset, e.offset + e.length)], {
          rawLength,
          flags,
          scopeHash,
          keyId,
        });
        if (builder.size >= this.opts.packSize) {
          written.push(await this.store(builder));
          builder = this.newPack();
        }
      }
    }
    if (builder.count > 0) written.push(await this.store(builder));
    this.progress('repack', wanted.size, wanted.size);
    this.result.packsWritten = written.length;
    return written;
  }

  /** Room for a full pack and its header, as a writer's; or for one blob bigger than that. */
  private newPack(atLeast = 0): PackBuilder {
    const size = this.opts.packSize;
    return new PackBuilder(Math.max(size + (size >> 3), atLeast + 4096));
  }

  private async store(builder: PackBuilder): Promise<EntryTable> {
    const { id, parts, size, entries, release } = builder.finish(this.ctx.meta.meta);
    try {
      await this.storage.put(packKey(id), parts, { size });
    } finally {
      release();
    }
    this.result.bytesFreed -= size;
    return entries;
  }

  /** Index objects naming a pack that goes: each is replaced, its kept packs listed anew. */
  private staleIndexes(): string[] {
    const out = new Set<string>();
    for (const id of [...this.toDelete, ...this.toRepack])
      for (const ix of this.index.indexesOf.get(id) ?? []) out.add(ix);
    return [...out];
  }

  /** The new index objects: the repacked packs, and every kept pack a stale index object names. */
  private async writeIndexes(stale: string[], newPacks: EntryTable[]): Promise<void> {
    let builder = new TableBuilder();
    const flush = async () => {
      if (builder.count === 0) return;
      const bytes = seal(this.ctx.meta.meta, builder.finish().bytes, INDEX_AAD);
      await this.storage.put(`${INDEX_PREFIX}${sha256Hex(bytes)}`, bytes, { size: bytes.length });
      this.result.indexesWritten++;
      builder = new TableBuilder();
    };
    for (const t of newPacks) {
      builder.group(t.groups[0]!.pack);
      builder.addGroup(t, 0);
      if (builder.count >= INDEX_BLOBS) await flush();
    }
    const relisted = new Set<string>();
    for (const [i, key] of stale.entries()) {
      this.progress('index', i, stale.length);
      for (const p of decodeIndex(this.ctx.meta.meta, key, await getBuffer(this.storage, key))) {
        if (this.toDelete.has(p.id) || this.toRepack.has(p.id) || relisted.has(p.id)) continue;
        // a pack named by an index but absent stays absent from the new one (check reports the old)
        if (!this.packs.has(p.id)) continue;
        relisted.add(p.id);
        builder.group(p.id);
        for (const b of p.blobs) builder.add(b.id, b);
        if (builder.count >= INDEX_BLOBS) await flush();
      }
    }
    await flush();
  }

  /**
   * Packs no index names: a killed backup's or a killed prune's. One may hold the only copy of a
   * blob a snapshot names (its index object lost): its header is read, and such a pack is kept.
   */
  private async deleteOrphans(): Promise<void> {
    for (const p of this.orphans) {
      if (this.missing.count > 0) {
        const header = await readPackHeader(this.storage, this.ctx.meta.meta, p.key, p.size).catch(() => []);
        if (header.some((b) => this.missing.find(b.id) >= 0)) {
          this.result.orphansDeleted--;
          this.result.bytesFreed -= p.size;
          continue;
        }
      }
      await this.storage.delete(p.key);
    }
  }
}
