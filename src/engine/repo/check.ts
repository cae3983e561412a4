/** The repository's one checker: a recovery point on one copy, or the whole repository; every problem as {object, kind, detail}. */
import pLimit from 'p-limit';
import { CorruptionError, NotFoundError, WedvaultError, WrongKeyError, errorMessage } from '../../errors.js';
import { getBuffer, type Storage } from '../../storage/types.js';
import type { ContentRef } from '../api.js';
import { decodeBlob, type BlobEntry } from './blob.js';
import { CONFIG_OBJECT, decodeConfig } from './config.js';
import { sha256Hex } from './crypto.js';
import { decodeIndex, INDEX_PREFIX } from './index.js';
import { inlineFault } from './inline.js';
import { openScopeKeys, REPO_KEY_OBJECT, scopeKeyName, type KeySet } from './keys.js';
import {
  claimedRepoId,
  identifyIndex,
  identifyPack,
  objectKind,
  openRepoKey,
  type Trust,
} from './objects.js';
import { checkHeaderAgainstIndex, packIdOf, packKey, readPackHeader, verifyPackBytes } from './pack.js';
import type { RepoReader } from './reader.js';
import { allContentRefs, snapshotKey, SNAPSHOTS_PREFIX, type Snapshot } from './snapshot.js';

/** quick: listing, keys, indexes, snapshots (the whole repository: pack headers too); full: every pack and blob. */
export type CheckMode = 'quick' | 'full';

/**
 * missing / size: the listing disagrees with the catalog (or an index); corrupt: bytes fail their
 * hash, MAC or tag (a swapped object too); stale_index: an index object holds another valid index;
 * wrong_key: the copy's keys open under another master key; unreachable: the target did not answer.
 */
export type ProblemKind = 'missing' | 'size' | 'corrupt' | 'stale_index' | 'wrong_key' | 'unreachable';

export interface ObjectRef {
  key: string;
  size: number;
}

export interface Problem {
  object: string;
  kind: ProblemKind;
  detail?: string;
}

export interface Found {
  kind: ProblemKind;
  detail?: string;
  /** false when copying the object from elsewhere cannot help (the fault lies in other objects). */
  repairable?: boolean;
}

export interface CopyReport {
  target: string;
  problems: Map<string, Found>;
  /** Set when the copy's keys and config open under the master key. */
  trust?: Trust;
  /** The repositories the copy's config and keys/repo name, verified or not. */
  claims: string[];
  unreachable: boolean;
  objectsChecked: number;
}

export interface PointCheckOptions {
  snapshotId: string;
  /** The point's objects as the catalog recorded them. */
  expected: ObjectRef[];
  masterKey: Buffer;
  mode: CheckMode;
  /** Full mode: the fraction (0..1) of packs read, chosen at random. */
  sample: number;
  /** Packs read at once. */
  concurrency: number;
}

export interface CheckOptions {
  /** Default quick. */
  mode?: CheckMode;
}

/** How a check opens the copy's snapshots: the repository facade, passed in so no import loop forms. */
export type OpenRepository = (storage: Storage) => Promise<{
  loadSnapshot(id: string): Promise<Snapshot>;
  reader(): RepoReader;
  /** True when every key set of the scope is gone: its blobs may have been pruned. */
  scopeErased(scope: string): Promise<boolean>;
}>;

/** Where the check starts: from the master key (a point on a copy) or from keys already opened (the whole repository). */
type Start = { masterKey: Buffer } | { keys: Pick<Trust, 'keys' | 'repoId'> };

/** What one run covers: a point against the catalog's list, or (no list) everything the store lists. */
interface Scope {
  start: Start;
  mode: CheckMode;
  expected?: ObjectRef[];
  /** The snapshot to walk; every listed one when the scope is the whole repository. */
  snapshotId?: string;
  sample: number;
  concurrency: number;
}

const WHOLE_PREFIXES = [CONFIG_OBJECT, 'keys/', INDEX_PREFIX, 'data/', SNAPSHOTS_PREFIX];

/** Checks one point on one copy. Never throws for damage or an unreachable store; only for bugs. */
export async function checkPoint(
  target: string,
  storage: Storage,
  opts: PointCheckOptions,
  openRepo: OpenRepository,
): Promise<CopyReport> {
  const rep = emptyReport(target);
  const { masterKey, ...scope } = opts;
  try {
    await new Checker(storage, { ...scope, start: { masterKey } }, rep, openRepo).run();
  } catch (err) {
    if (!(err instanceof WedvaultError)) throw err;
    rep.unreachable = true;
    rep.problems.set('(target)', { kind: 'unreachable', detail: errorMessage(err), repairable: false });
  }
  return rep;
}

/** Checks the whole repository as listed, with its keys already opened; a store error propagates. */
export async function checkRepository(
  storage: Storage,
  keys: Pick<Trust, 'keys' | 'repoId'>,
  opts: CheckOptions,
  openRepo: OpenRepository,
): Promise<Problem[]> {
  const rep = emptyReport(storage.name);
  const scope: Scope = { start: { keys }, mode: opts.mode ?? 'quick', sample: 1, concurrency: 4 };
  await new Checker(storage, scope, rep, openRepo).run();
  return [...rep.problems].map(([object, f]) => ({
    object,
    kind: f.kind,
    ...(f.detail ? { detail: f.detail } : {}),
  }));
}

function emptyReport(target: string): CopyReport {
  return { target, problems: new Map(), claims: [], unreachable: false, objectsChecked: 0 };
}

class Checker {
  private readonly present = new Map<string, number>();
  private expected: ObjectRef[] = [];
  /** Blob entries of this copy's sound index objects, by blob and by pack. */
  private readonly entries = new Map<string, BlobEntry>();
  private readonly packEntries = new Map<string, BlobEntry[]>();
  /**
   * The whole repository has no catalog to compare a listing with: its quick check reads pack
   * headers instead, and leaves inline content (data, not structure) to full.
   */
  private readonly whole: boolean;

  constructor(
    private readonly storage: Storage,
    private readonly scope: Scope,
    private readonly rep: CopyReport,
    private readonly openRepo: OpenRepository,
  ) {
    this.whole = scope.expected === undefined;
  }

  /** Records a problem once per object; a content finding may refine a plain size mismatch. */
  private report(object: string, kind: ProblemKind, detail: string, refine = false, repairable = true): void {
    const had = this.rep.problems.get(object);
    if (had && !(refine && had.kind === 'size')) return;
    this.rep.problems.set(object, {
      kind,
      detail: had?.detail ? `${detail} (${had.detail})` : detail,
      ...(repairable ? {} : { repairable }),
    });
  }

  /** Maps an error from reading or opening `object` to a problem; other errors propagate. */
  private fail(object: string, err: unknown): void {
    if (err instanceof WrongKeyError) this.report(REPO_KEY_OBJECT, 'wrong_key', err.message, true);
    else if (err instanceof CorruptionError) this.report(err.object ?? object, 'corrupt', err.message);
    else if (err instanceof NotFoundError) this.report(object, 'missing', err.message);
    else throw err;
  }

  private has(key: string): boolean {
    return this.present.has(key);
  }

  private of(kind: ReturnType<typeof objectKind>): ObjectRef[] {
    return this.expected.filter((o) => objectKind(o.key) === kind && this.has(o.key));
  }

  async run(): Promise<void> {
    await this.listing();
    const start = this.scope.start;
    const trust = 'keys' in start ? start.keys : await this.openKeys(start.masterKey);
    const full = this.scope.mode === 'full';
    const scopeKeys = trust && (full || this.whole) ? await this.scopeKeys(trust) : new Map<string, KeySet>();
    const indexesSound = await this.indexes(trust);
    if (trust) await this.snapshots(indexesSound);
    if (full) await this.readPacks(trust, scopeKeys);
    else if (this.whole && trust) await this.readHeaders(trust);
  }

  /** One list pass per prefix: every expected object present with the size the catalog recorded. */
  private async listing(): Promise<void> {
    const expected = this.scope.expected;
    const prefixes = expected
      ? new Set(expected.map((o) => (o.key.includes('/') ? o.key.split('/')[0] + '/' : o.key)))
      : WHOLE_PREFIXES;
    for (const p of prefixes) for await (const o of this.storage.list(p)) this.present.set(o.key, o.size);
    this.expected = expected ?? [...this.present].map(([key, size]) => ({ key, size }));
    for (const o of this.expected) {
      const size = this.present.get(o.key);
      if (size === undefined) this.report(o.key, 'missing', 'not in the listing');
      else if (size !== o.size) this.report(o.key, 'size', `${size} bytes, expected ${o.size}`);
    }
    this.rep.objectsChecked = this.expected.length;
  }

  private async openKeys(masterKey: Buffer): Promise<Trust | undefined> {
    let opened: ReturnType<typeof openRepoKey> | undefined;
    if (this.has(REPO_KEY_OBJECT)) {
      const bytes = await getBuffer(this.storage, REPO_KEY_OBJECT);
      this.claim(claimedRepoId(REPO_KEY_OBJECT, bytes));
      try {
        opened = openRepoKey(masterKey, bytes);
      } catch (err) {
        this.fail(REPO_KEY_OBJECT, err);
      }
    }
    let configSound = false;
    if (this.has(CONFIG_OBJECT)) {
      const bytes = await getBuffer(this.storage, CONFIG_OBJECT);
      this.claim(claimedRepoId(CONFIG_OBJECT, bytes));
      try {
        if (opened) configSound = Boolean(decodeConfig(opened.keys, opened.repoId, bytes));
      } catch (err) {
        this.fail(CONFIG_OBJECT, err);
      }
    }
    if (!opened || !configSound) return undefined;
    this.rep.trust = { masterKey, keys: opened.keys, repoId: opened.repoId };
    return this.rep.trust;
  }

  private claim(id: string | undefined): void {
    if (id) this.rep.claims.push(id);
  }

  /** Opens every scope-key object in scope (a bundle or one key set); returns the sets by key name. */
  private async scopeKeys(trust: Pick<Trust, 'keys'>): Promise<Map<string, KeySet>> {
    const out = new Map<string, KeySet>();
    for (const o of this.of('scope-key')) {
      try {
        const sets = openScopeKeys(trust.keys, o.key, await getBuffer(this.storage, o.key));
        for (const [name, set] of sets) out.set(name, set);
      } catch (err) {
        this.fail(o.key, err);
      }
    }
    return out;
  }

  /** Decodes every index object in scope; true when all are present and sound. */
  private async indexes(trust: Pick<Trust, 'keys'> | undefined): Promise<boolean> {
    let sound = this.expected.every((o) => objectKind(o.key) !== 'index' || this.has(o.key));
    for (const o of this.of('index')) {
      const bytes = await getBuffer(this.storage, o.key);
      if (!trust) {
        // Without keys only the name can be checked: it is the SHA-256 of the bytes.
        if (sha256Hex(bytes) !== o.key.slice(INDEX_PREFIX.length)) {
          this.report(o.key, 'corrupt', 'content does not match its name (SHA-256)');
        }
        sound = false;
        continue;
      }
      try {
        for (const p of decodeIndex(trust.keys.meta, o.key, bytes)) {
          this.packEntries.set(p.id, p.blobs);
          for (const b of p.blobs) if (!this.entries.has(b.id)) this.entries.set(b.id, b);
        }
      } catch (err) {
        if (!(err instanceof CorruptionError)) throw err;
        sound = false;
        const other = identifyIndex(trust, bytes);
        if (other) {
          this.report(
            o.key,
            'stale_index',
            `holds ${other.key}, another valid index of this repository`,
            true,
          );
        } else this.report(o.key, 'corrupt', err.message);
      }
    }
    for (const [id, blobs] of this.packEntries) {
      const key = packKey(id);
      if (!this.has(key)) this.report(key, 'missing', `listed by the index, ${blobs.length} blobs`);
    }
    return sound;
  }

  /** Loads each snapshot in scope (MAC, seal, treeRef); with sound indexes, walks what it names. */
  private async snapshots(indexesSound: boolean): Promise<void> {
    const ids = this.scope.snapshotId
      ? [this.scope.snapshotId]
      : this.of('snapshot').map((o) => o.key.slice(SNAPSHOTS_PREFIX.length));
    for (const id of ids) {
      const loaded = await this.snapshot(id);
      if (loaded && indexesSound) await this.consistency(loaded.snap, loaded.reader, loaded.erased);
    }
  }

  private async snapshot(
    id: string,
  ): Promise<
    { snap: Snapshot; reader: RepoReader; erased: (scope: string) => Promise<boolean> } | undefined
  > {
    const key = snapshotKey(id);
    if (!this.has(key)) return undefined;
    try {
      const repo = await this.openRepo(this.storage);
      return {
        snap: await repo.loadSnapshot(id),
        reader: repo.reader(),
        erased: (scope) => repo.scopeErased(scope),
      };
    } catch (err) {
      // A missing pack of a large tree is already in the listing's findings; 'index/' names no object.
      if (err instanceof NotFoundError) return undefined;
      if (err instanceof CorruptionError && err.object?.endsWith('/')) return undefined;
      this.fail(key, err);
      return undefined;
    }
  }

  /**
   * Every blob the snapshot names is in this copy's index, and every pack holding one exists; the
   * record lists (a table's segments) are read from this copy once their own blobs are there.
   */
  private async consistency(
    snap: Snapshot,
    reader: RepoReader,
    erased: (scope: string) => Promise<boolean>,
  ): Promise<void> {
    const key = snapshotKey(snap.id);
    let lost = 0;
    let example = '';
    const sound = new Set<ContentRef>();
    /** Blobs in no index, by scope: an erased scope's were pruned, and are no problem. */
    const unindexed = new Map<string, { count: number; example: string }>();
    const check = (ref: ContentRef) => {
      let whole = true;
      for (const blob of ref.blobs) {
        const e = this.entries.get(blob);
        if (!e) {
          const u = unindexed.get(ref.scope) ?? { count: 0, example: blob };
          u.count++;
          unindexed.set(ref.scope, u);
          whole = false;
        } else if (!this.has(packKey(e.pack))) {
          this.report(packKey(e.pack), 'missing', `holds blob ${blob.slice(0, 16)}… of this point`);
          whole = false;
        }
      }
      if (whole) sound.add(ref);
    };
    if (snap.treeRef) check(snap.treeRef);
    const openInline = !this.whole || this.scope.mode === 'full';
    try {
      for await (const ref of allContentRefs(snap.tree, reader, (list) => sound.delete(list))) {
        check(ref);
        // inline content (a delta's rows of one wedding) is opened; the record list holding it
        // passed its own check, so every copy holds the same bytes: not repairable
        const fault = openInline && ref.inline !== undefined && (await inlineFault(reader, ref));
        if (fault) this.report(key, 'corrupt', fault, false, false);
      }
    } catch (err) {
      this.fail(key, err);
    }
    for (const [scope, u] of unindexed) {
      if (await erased(scope)) continue;
      lost += u.count;
      example ||= u.example;
    }
    // Every index in scope is sound, so the fault is not in one object a copy could replace.
    if (lost > 0) {
      this.report(
        key,
        'missing',
        `${lost} of its blobs are in no index of this copy, e.g. ${example}`,
        false,
        false,
      );
    }
  }

  /** The packs to read: those in scope, and for the whole repository those an index names. */
  private packs(): ObjectRef[] {
    const packs = this.of('pack');
    return this.whole ? packs.filter((o) => this.packEntries.has(packIdOf(o.key))) : packs;
  }

  /** Quick check of the whole repository: every indexed pack's header agrees with the index. */
  private async readHeaders(trust: Pick<Trust, 'keys'>): Promise<void> {
    for (const o of this.packs()) {
      try {
        const header = await readPackHeader(this.storage, trust.keys.meta, o.key, o.size);
        checkHeaderAgainstIndex(o.key, header, this.packEntries.get(packIdOf(o.key)) ?? []);
      } catch (err) {
        this.fail(o.key, err);
      }
    }
  }

  /** Full mode: reads packs whole (a random `sample` of them), checks hash, header, index and every blob. */
  private async readPacks(
    trust: Pick<Trust, 'keys'> | undefined,
    scopeKeys: Map<string, KeySet>,
  ): Promise<void> {
    const limit = pLimit(this.scope.concurrency);
    await Promise.all(
      sampleOf(this.packs(), this.scope.sample).map((o) =>
        limit(async () => {
          try {
            this.checkPack(trust, scopeKeys, o.key, await getBuffer(this.storage, o.key));
          } catch (err) {
            this.fail(o.key, err);
          }
        }),
      ),
    );
  }

  private checkPack(
    trust: Pick<Trust, 'keys'> | undefined,
    scopeKeys: Map<string, KeySet>,
    key: string,
    bytes: Buffer,
  ): void {
    if (!trust) {
      if (sha256Hex(bytes) !== packIdOf(key))
        this.report(key, 'corrupt', 'content does not match its name (SHA-256)');
      return;
    }
    let header: BlobEntry[];
    try {
      header = verifyPackBytes(trust.keys.meta, key, bytes);
    } catch (err) {
      const real = identifyPack(trust, bytes, (k) => this.has(k));
      if (real) this.report(key, 'corrupt', `holds the bytes of ${real} (swapped)`, true);
      else throw err;
      return;
    }
    checkHeaderAgainstIndex(key, header, this.packEntries.get(packIdOf(key)) ?? []);
    for (const e of header) {
      // Blobs of scopes out of scope (or erased) have no key here; the pack hash already covers them.
      const keys = scopeKeys.get(scopeKeyName(e.scopeHash, e.keyId));
      if (keys) decodeBlob(keys, e, bytes.subarray(e.offset, e.offset + e.length), key);
    }
  }
}

function sampleOf<T>(items: T[], fraction: number): T[] {
  if (fraction >= 1) return items;
  const shuffled = [...items];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  return shuffled.slice(0, Math.ceil(items.length * fraction));
}
