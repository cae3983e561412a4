/** The repository facade: init/open over a Storage, writers and readers, snapshots, objects and checks. */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Readable } from 'node:stream';
import { ConflictError, CorruptionError, NotFoundError } from '../../errors.js';
import { getBuffer, type ObjectInfo, type Storage } from '../../storage/types.js';
import { isErased, PLATFORM_SCOPE, type WriteStats } from '../api.js';
import {
  checkPoint,
  checkRepository,
  type CheckOptions,
  type CopyReport,
  type PointCheckOptions,
  type Problem,
} from './check.js';
import { DEFAULT_CHUNKER, gearTable, validateChunkerParams, type ChunkerParams } from './chunker.js';
import { CONFIG_OBJECT, decodeConfig, encodeConfig, FORMAT_VERSION, type RepoConfig } from './config.js';
import { RepoIndex } from './index.js';
import {
  checkMasterKey,
  deriveMetaKeys,
  openScopeKeys,
  REPO_KEY_OBJECT,
  ScopeKeys,
  SCOPE_BUNDLES_PREFIX,
  sealBundle,
  unwrapRepoKey,
  wrapRepoKey,
  type MetaKeys,
} from './keys.js';
import { jsonPieces, jsonStream } from './json-stream.js';
import { processEncodePool, type EncodePool } from './encode-pool.js';
import { encodeLedgerEntry, ledgerKey, readLedger, type LedgerEntry } from './ledger.js';
import { RepoLock } from './lock.js';
import { forgetSnapshots, prune, type PruneOptions, type PruneResult } from './prune.js';
import { packKey } from './pack.js';
import { RepoReader, type ReaderOptions } from './reader.js';
import {
  blobIdBatches,
  decodeSnapshot,
  encodeSnapshot,
  snapshotKey,
  SNAPSHOTS_PREFIX,
  type ConsistentPoint,
  type Snapshot,
  type SnapshotSummary,
} from './snapshot.js';
import { RepoWriter, type RepoContext, type WriterOptions } from './writer.js';
import { openInline, sealInline } from './inline.js';
import {
  CHANGES_PREFIX,
  decodeSegment,
  encodeSegment,
  segmentKey,
  segmentRange,
  segmentsPrefix,
  type SegmentManifest,
  type SegmentSummary,
} from './segments.js';

export { CONFIG_OBJECT, FORMAT_VERSION, type RepoConfig } from './config.js';
export { checkMasterKey } from './keys.js';
/** Trees bigger than this are stored as content and the manifest keeps only their ref. */
const INLINE_TREE_BYTES = 256 * 1024;

export interface OpenOptions {
  /** The encoder threads this repository's reads and writes use (default: the process's pool). */
  pool?: EncodePool;
}

export interface InitOptions extends OpenOptions {
  chunker?: Partial<ChunkerParams>;
}

export interface SaveSnapshotInput {
  type: string;
  tree: unknown;
  stats: WriteStats;
  parent?: string | undefined;
  consistentPoint?: ConsistentPoint | undefined;
  tags?: Record<string, string>;
}

export class Repository {
  private readonly ctx: RepoContext;
  private readonly snapshots = new Map<string, Snapshot>();

  private constructor(
    readonly storage: Storage,
    readonly config: RepoConfig,
    private readonly keys: MetaKeys,
    pool: EncodePool | undefined,
  ) {
    const scopes = new ScopeKeys(storage, keys);
    this.ctx = {
      storage,
      meta: keys,
      scopes,
      index: new RepoIndex(storage, keys.meta),
      chunker: config.chunker,
      gear: gearTable(keys.gearSeed),
      pool: pool ?? processEncodePool(),
    };
  }

  get id(): string {
    return this.config.id;
  }

  static async init(storage: Storage, masterKey: Buffer, opts: InitOptions = {}): Promise<Repository> {
    checkMasterKey(masterKey);
    const exists = await storage.stat(CONFIG_OBJECT).then(
      () => true,
      (err: unknown) => (err instanceof NotFoundError ? false : Promise.reject(err)),
    );
    if (exists) throw new ConflictError(`${storage.name}: a repository already exists here`);
    const chunker = { ...DEFAULT_CHUNKER, ...opts.chunker };
    validateChunkerParams(chunker);
    const config: RepoConfig = {
      version: FORMAT_VERSION,
      id: randomBytes(16).toString('hex'),
      created: new Date().toISOString(),
      chunker,
    };
    const repoKey = randomBytes(32);
    const keys = deriveMetaKeys(repoKey);
    await storage.put(REPO_KEY_OBJECT, wrapRepoKey(masterKey, config.id, repoKey));
    const repo = new Repository(storage, config, keys, opts.pool);
    await repo.ctx.scopes.forScope(PLATFORM_SCOPE);
    // The config goes last, once the key is on disk: its presence means the repository is complete.
    await storage.sync?.();
    await storage.put(CONFIG_OBJECT, encodeConfig(keys, config));
    await storage.sync?.();
    return repo;
  }

  static async open(storage: Storage, masterKey: Buffer, opts: OpenOptions = {}): Promise<Repository> {
    checkMasterKey(masterKey);
    const raw = await getBuffer(storage, CONFIG_OBJECT);
    const { repoId, repoKey } = unwrapRepoKey(masterKey, await getBuffer(storage, REPO_KEY_OBJECT));
    const keys = deriveMetaKeys(repoKey);
    const config = decodeConfig(keys, repoId, raw);
    return new Repository(storage, config, keys, opts.pool);
  }

  static async openOrInit(storage: Storage, masterKey: Buffer, opts: InitOptions = {}): Promise<Repository> {
    try {
      return await Repository.open(storage, masterKey, opts);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      return Repository.init(storage, masterKey, opts);
    }
  }

  writer(opts: WriterOptions = {}): RepoWriter {
    return new RepoWriter(this.ctx, opts);
  }

  reader(opts: ReaderOptions = {}): RepoReader {
    return new RepoReader(this.ctx, opts);
  }

  /** The name hash of a scope: its key sets are named keys/scopes/<hash>/<keyId>. */
  scopeHash(scope: string): string {
    return this.ctx.scopes.scopeHash(scope);
  }

  /**
   * Crypto-shredding: removes every key set of `scope` (from its bundles and its own objects) under
   * an exclusive lock, so no writer is creating blobs for it meanwhile. Its blobs stay, unreadable.
   */
  async eraseScope(scope: string): Promise<string[]> {
    const lock = await RepoLock.acquire(this.storage, { exclusive: true });
    try {
      return await this.ctx.scopes.eraseScope(scope);
    } finally {
      await lock.release();
    }
  }

  /**
   * An erasure on this copy: the ledger entry first (so a later backup or restore leaves the scope
   * out even if this is killed before the keys go; rerunning finishes it), then the scope's keys,
   * under an exclusive lock that waits up to `waitMs` for running backups and replications.
   */
  async erase(
    entry: Omit<LedgerEntry, 'version'>,
    opts: { waitMs?: number } = {},
  ): Promise<{ objects: string[]; keyIds: string[] }> {
    const lock = await RepoLock.acquire(this.storage, { exclusive: true, waitMs: opts.waitMs ?? 0 });
    try {
      const object = ledgerKey(entry.erasureId);
      await this.storage.put(object, encodeLedgerEntry(this.keys, { version: 1, ...entry }));
      await this.storage.sync?.();
      this.erased = undefined;
      const keyIds: string[] = [];
      const objects = await this.ctx.scopes.eraseScope(entry.scope, keyIds);
      return { objects, keyIds: [...new Set(keyIds)].sort() };
    } finally {
      await lock.release();
    }
  }

  private erased: Promise<LedgerEntry[]> | undefined;

  /** The erasure ledger (ledger.ts), read once per open repository (`fresh`: read again). */
  ledger(opts: { fresh?: boolean } = {}): Promise<LedgerEntry[]> {
    if (opts.fresh) this.erased = undefined;
    this.erased ??= readLedger(this.storage, this.keys);
    return this.erased;
  }

  /** Scopes the ledger names: backups skip them, restores leave them out. */
  async erasedScopes(): Promise<Set<string>> {
    return new Set((await this.ledger()).map((e) => e.scope));
  }

  /**
   * A key object as a copy that obeys the erasure ledger must hold it: a bundle without the key
   * sets of `erased` scopes (resealed under the same name), a single key set only when not erased;
   * null when nothing of it may be copied. Other objects pass unchanged.
   */
  withoutErasedKeys(object: string, bytes: Buffer, erased: ReadonlySet<string>): Buffer | null {
    if (erased.size === 0 || !object.startsWith('keys/') || object === REPO_KEY_OBJECT) return bytes;
    const sets = [...openScopeKeys(this.keys, object, bytes).values()];
    const kept = sets.filter((k) => !isErased(k.scope, erased));
    if (kept.length === sets.length) return bytes;
    if (kept.length === 0 || !object.startsWith(SCOPE_BUNDLES_PREFIX)) return null;
    return sealBundle(this.keys, object, kept);
  }

  /** Deletes snapshots (recovery points); their blobs go at the next prune. Idempotent. */
  async forgetSnapshots(ids: string[]): Promise<string[]> {
    for (const id of ids) this.snapshots.delete(id);
    return forgetSnapshots(this.storage, ids);
  }

  /**
   * Removes every blob no snapshot names (repo/prune.ts), under an exclusive lock. The index this
   * object held is dropped before and after: the packs it names may be gone.
   */
  async prune(opts: PruneOptions = {}): Promise<PruneResult> {
    this.snapshots.clear();
    this.ctx.index = new RepoIndex(this.storage, this.keys.meta);
    try {
      return await prune(this.ctx, (id) => this.readSnapshot(id), opts);
    } finally {
      this.ctx.index = new RepoIndex(this.storage, this.keys.meta);
    }
  }

  /**
   * Whether a scope's key sets are all gone (erased): its blobs are then reported as not found,
   * and may be pruned. False while a bundle fails to open (a damaged key cannot be told from an erased one).
   */
  async scopeErased(scope: string): Promise<boolean> {
    return (await this.ctx.scopes.holds(this.scopeHash(scope))) === false;
  }

  /** Writes the manifest; call after the writer's flush, so everything it names already exists. */
  async saveSnapshot(input: SaveSnapshotInput): Promise<Snapshot> {
    const manifest: SnapshotSummary & { tree?: unknown } = {
      version: 1,
      id: randomBytes(16).toString('hex'),
      time: new Date().toISOString(),
      type: input.type,
      parent: input.parent,
      hostname: os.hostname(),
      tags: input.tags ?? {},
      stats: { ...input.stats },
      consistentPoint: input.consistentPoint,
    };
    // A big tree (a database's segments) is streamed as JSON text, never held as one string.
    const small = jsonPieces(input.tree ?? null, INLINE_TREE_BYTES);
    if (small === undefined) {
      const w = this.writer({ lock: false });
      manifest.treeRef = await w.write(PLATFORM_SCOPE, Readable.from(jsonStream(input.tree ?? null)));
      await w.flush();
    } else {
      manifest.tree = input.tree ?? null;
    }
    // what it names reaches the disk before the snapshot does, and the snapshot before we say so
    await this.storage.sync?.();
    await this.storage.put(snapshotKey(manifest.id), encodeSnapshot(this.keys, manifest));
    await this.storage.sync?.();
    const snap: Snapshot = { ...manifest, tree: input.tree ?? null };
    this.snapshots.set(snap.id, snap);
    return snap;
  }

  /** Loads and verifies one snapshot, its tree included; CorruptionError names the damaged object. */
  async loadSnapshot(id: string): Promise<Snapshot> {
    const cached = this.snapshots.get(id);
    if (cached) return cached;
    const snap = await this.readSnapshot(id);
    this.snapshots.set(id, snap);
    return snap;
  }

  /** loadSnapshot without the cache: a walk over every snapshot holds one tree at a time. */
  private async readSnapshot(id: string): Promise<Snapshot> {
    const key = snapshotKey(id);
    const manifest = decodeSnapshot(this.keys, key, await getBuffer(this.storage, key));
    let tree = manifest.tree;
    if (manifest.treeRef) {
      const bytes = await this.reader().readBuffer(manifest.treeRef);
      tree = JSON.parse(bytes.toString('utf8'));
    }
    return { ...manifest, tree };
  }

  /** Every readable snapshot, oldest first. Damaged ones are left out here; check() reports them. */
  async listSnapshots(): Promise<SnapshotSummary[]> {
    const out: SnapshotSummary[] = [];
    for await (const o of this.storage.list(SNAPSHOTS_PREFIX)) {
      try {
        const m =
          this.snapshots.get(o.key.slice(SNAPSHOTS_PREFIX.length)) ??
          decodeSnapshot(this.keys, o.key, await getBuffer(this.storage, o.key));
        const { tree: _tree, ...summary } = m as Snapshot;
        out.push(summary);
      } catch (err) {
        if (!(err instanceof CorruptionError || err instanceof NotFoundError)) throw err;
      }
    }
    return out.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  }

  async latestSnapshot(
    filter: { type?: string; tag?: [string, string] } = {},
  ): Promise<Snapshot | undefined> {
    const all = await this.listSnapshots();
    const match = all.filter(
      (s) =>
        (!filter.type || s.type === filter.type) &&
        (!filter.tag || s.tags?.[filter.tag[0]] === filter.tag[1]),
    );
    const last = match.at(-1);
    return last ? this.loadSnapshot(last.id) : undefined;
  }

  async findSnapshotByTag(name: string, value: string): Promise<Snapshot | undefined> {
    return this.latestSnapshot({ tag: [name, value] });
  }

  /** Every object key with its size: what replication and verification work from. */
  async listObjects(prefix = ''): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    for await (const o of this.storage.list(prefix)) {
      if (!o.key.startsWith('locks/')) out.push({ key: o.key, size: o.size });
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  /**
   * The objects one snapshot needs: config, keys, its scope keys, the index objects listing its
   * blobs, every pack those indexes list (so a copy's index never names a pack it lacks), itself.
   */
  async objectsForSnapshot(id: string): Promise<{ key: string; size: number }[]> {
    const snap = await this.loadSnapshot(id);
    await Promise.all([this.ctx.index.refresh(), this.ctx.scopes.preload()]);
    // an erased scope's key sets are gone by design: its blobs need no key object any more
    const erased = new Set([...(await this.erasedScopes())].map((s) => this.scopeHash(s)));
    const packs = new Set<string>();
    const keySets = new Set<{ scopeHash: string; keyId: string }>();
    const reader = this.reader();
    const batches = async function* () {
      if (snap.treeRef) yield snap.treeRef.blobs;
      yield* blobIdBatches(snap.tree, reader);
    };
    const index = this.ctx.index;
    for await (const batch of batches()) {
      for (const blob of batch) {
        const n = index.find(blob);
        if (n < 0)
          throw new CorruptionError(`snapshot ${id} names blob ${blob} that no index holds`, {
            object: snapshotKey(id),
          });
        packs.add(index.packOf(n));
        const keySet = index.keysOf(n);
        if (!erased.has(keySet.scopeHash)) keySets.add(keySet);
      }
    }
    const indexes = new Set<string>();
    for (const p of packs) for (const ix of index.indexesOf.get(p) ?? []) indexes.add(ix);
    const scopeKeys = new Set([...keySets].map((k) => this.ctx.scopes.storedIn(k.scopeHash, k.keyId)));
    const keys = new Set<string>([CONFIG_OBJECT, REPO_KEY_OBJECT, snapshotKey(id), ...indexes, ...scopeKeys]);
    for (const ix of indexes) for (const p of this.ctx.index.packsOf.get(ix) ?? []) keys.add(packKey(p));
    const sizes = new Map<string, number>();
    for (const prefix of ['config', 'keys/', 'index/', 'data/', 'snapshots/']) {
      for await (const o of this.storage.list(prefix)) if (keys.has(o.key)) sizes.set(o.key, o.size);
    }
    const missing = [...keys].filter((k) => !sizes.has(k));
    if (missing.length > 0)
      throw new NotFoundError(`snapshot ${id} needs missing objects: ${missing.slice(0, 5).join(', ')}`);
    return [...sizes].map(([key, size]) => ({ key, size })).sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  /**
   * Checks one recovery point on one copy, which may not even open (wrong key, damaged config): every
   * problem as {object, kind, detail}, and the trust a sound copy's keys give. Never throws for damage.
   */
  static check(target: string, storage: Storage, opts: PointCheckOptions): Promise<CopyReport> {
    return checkPoint(target, storage, opts, (s) => Repository.open(s, opts.masterKey));
  }

  /** Verifies indexes, packs (headers; full: every blob), snapshots and scope keys of the whole repository. */
  async check(opts: CheckOptions = {}): Promise<Problem[]> {
    const self = {
      loadSnapshot: (id: string) => this.uncachedSnapshot(id),
      reader: () => this.reader(),
      scopeErased: (scope: string) => this.scopeErased(scope),
    };
    const problems = await checkRepository(this.storage, { keys: this.keys, repoId: this.id }, opts, () =>
      Promise.resolve(self),
    );
    return [...problems, ...(await this.checkSegments(opts.mode === 'full'))];
  }

  /**
   * Every change segment's MAC and name (quick), and every part opened under its scope's key (full;
   * an erased scope's parts are unreadable by design). A source's gaps are the window's business.
   */
  async checkSegments(full: boolean): Promise<Problem[]> {
    const problems: Problem[] = [];
    for await (const o of this.storage.list(CHANGES_PREFIX)) {
      if (!segmentRange(o.key)) continue;
      try {
        const m = await this.loadSegment(o.key);
        if (!full) continue;
        for (const scope of Object.keys(m.parts)) {
          try {
            await this.openSegmentPart(m, scope);
          } catch (err) {
            if (err instanceof NotFoundError && (await this.scopeErased(scope))) continue;
            throw err;
          }
        }
      } catch (err) {
        const kind = err instanceof NotFoundError ? 'missing' : 'corrupt';
        problems.push({ object: o.key, kind, detail: (err as Error).message });
      }
    }
    return problems;
  }

  /**
   * Stores a change segment: each scope's part sealed under its key (new scopes' keys stored first,
   * in one bundle), then the manifest. Returns what it wrote, in that order, so the capture can put
   * the same objects on the other copies.
   */
  async saveSegment(
    manifest: Omit<SegmentManifest, 'parts' | 'version'>,
    parts: Map<string, Buffer>,
  ): Promise<{ key: string; bytes: Buffer }[]> {
    const sealed: SegmentManifest['parts'] = {};
    for (const [scope, plain] of parts) {
      const keys = await this.ctx.scopes.forScope(scope);
      sealed[scope] = { sealed: sealInline(keys, plain, true), size: plain.length };
    }
    const written: { key: string; bytes: Buffer }[] = [];
    const bundle = await this.ctx.scopes.persist();
    if (bundle) written.push({ key: bundle.key, bytes: await getBuffer(this.storage, bundle.key) });
    const key = segmentKey(manifest.source, manifest.startLsn, manifest.endLsn);
    const bytes = encodeSegment(this.keys, key, { version: 1, ...manifest, parts: sealed });
    await this.storage.sync?.();
    await this.storage.put(key, bytes, { size: bytes.length });
    await this.storage.sync?.();
    written.push({ key, bytes });
    return written;
  }

  /** The source's segment object names in LSN order (by end). */
  async listSegmentKeys(source: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const o of this.storage.list(segmentsPrefix(source))) {
      if (segmentRange(o.key)) keys.push(o.key);
    }
    return keys.sort();
  }

  /** A segment's manifest, checked (MAC, name); its parts still sealed. */
  async loadSegment(key: string): Promise<SegmentManifest> {
    return decodeSegment(this.keys, key, await getBuffer(this.storage, key));
  }

  /** The manifest without its parts: what a window or a listing needs. */
  async segmentSummary(key: string): Promise<SegmentSummary> {
    const { parts, ...rest } = await this.loadSegment(key);
    return { ...rest, key, scopes: Object.keys(parts) };
  }

  /** One scope's part of a segment, opened; NotFoundError when the scope's keys were erased. */
  async openSegmentPart(manifest: SegmentManifest, scope: string): Promise<Buffer> {
    const part = manifest.parts[scope];
    if (!part) throw new NotFoundError(`segment has no part for ${scope}`);
    const hash = this.scopeHash(scope);
    const ref = { scope, blobs: [], size: part.size, inline: part.sealed };
    try {
      return await openInline(ref, (keyId) => this.ctx.scopes.byRef(hash, keyId));
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      // a scope new since the keys were listed (the capture keeps writing): list them again, once
      await this.ctx.scopes.reload();
      return openInline(ref, (keyId) => this.ctx.scopes.byRef(hash, keyId));
    }
  }

  /** Deletes the source's segments that end before `lsn` (retention: no kept base point needs them). */
  async dropSegmentsBefore(source: string, lsn: string): Promise<string[]> {
    const limit = segmentKey(source, lsn, lsn).slice(0, segmentsPrefix(source).length + 16);
    const old = (await this.listSegmentKeys(source)).filter(
      (k) => k.slice(0, segmentsPrefix(source).length + 16) < limit,
    );
    for (const k of old) await this.storage.delete(k);
    return old;
  }

  private async uncachedSnapshot(id: string): Promise<Snapshot> {
    this.snapshots.delete(id);
    return this.loadSnapshot(id);
  }
}
