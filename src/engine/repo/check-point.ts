/** Checks one recovery point's objects on one store (one copy): listing and sizes, keys, snapshot, index consistency, and in full mode every pack. */
import pLimit from 'p-limit';
import { CorruptionError, NotFoundError, WedvaultError, WrongKeyError, errorMessage } from '../../errors.js';
import { getBuffer, type Storage } from '../../storage/types.js';
import type { ContentRef } from '../api.js';
import { decodeBlob, type BlobEntry } from './blob.js';
import { CONFIG_OBJECT, decodeConfig } from './config.js';
import { sha256Hex } from './crypto.js';
import { decodeIndex, INDEX_PREFIX } from './index.js';
import { inlineFault } from './inline.js';
import { openScopeKeys, REPO_KEY_OBJECT, SCOPE_KEYS_PREFIX, type KeySet } from './keys.js';
import {
  claimedRepoId,
  identifyIndex,
  identifyPack,
  objectKind,
  openRepoKey,
  type Trust,
} from './objects.js';
import { checkHeaderAgainstIndex, packIdOf, packKey, verifyPackBytes } from './pack.js';
import type { RepoReader } from './reader.js';
import { allContentRefs, snapshotKey, type Snapshot } from './snapshot.js';
import type { CheckMode } from './check.js';

/**
 * missing / size: the listing disagrees with the catalog; corrupt: bytes fail their hash, MAC or tag
 * (a swapped object too); stale_index: an index object holds another valid index; wrong_key: the
 * copy's keys open under another master key; unreachable: the target did not answer.
 */
export type ProblemKind = 'missing' | 'size' | 'corrupt' | 'stale_index' | 'wrong_key' | 'unreachable';

export interface ObjectRef {
  key: string;
  size: number;
}

/** How a checked copy opens its snapshot: the repository facade, passed in so no import loop forms. */
export type OpenRepository = (
  storage: Storage,
  masterKey: Buffer,
) => Promise<{ loadSnapshot(id: string): Promise<Snapshot>; reader(): RepoReader }>;

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
  expected: ObjectRef[];
  masterKey: Buffer;
  mode: CheckMode;
  sample: number;
  concurrency: number;
}

/** Never throws for damage or an unreachable store; only for bugs. */
export async function checkPoint(
  target: string,
  storage: Storage,
  opts: PointCheckOptions,
  openRepo: OpenRepository,
): Promise<CopyReport> {
  const rep: CopyReport = {
    target,
    problems: new Map(),
    claims: [],
    unreachable: false,
    objectsChecked: 0,
  };
  try {
    await new PointCheck(storage, opts, rep, openRepo).run();
  } catch (err) {
    if (!(err instanceof WedvaultError)) throw err;
    rep.unreachable = true;
    rep.problems.set('(target)', { kind: 'unreachable', detail: errorMessage(err), repairable: false });
  }
  return rep;
}

class PointCheck {
  private readonly present = new Map<string, number>();
  /** Blob entries of this copy's sound index objects, by blob and by pack. */
  private readonly entries = new Map<string, BlobEntry>();
  private readonly packEntries = new Map<string, BlobEntry[]>();

  constructor(
    private readonly storage: Storage,
    private readonly opts: PointCheckOptions,
    private readonly rep: CopyReport,
    private readonly openRepo: OpenRepository,
  ) {}

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

  private claim(id: string | undefined): void {
    if (id) this.rep.claims.push(id);
  }

  private has(key: string): boolean {
    return this.present.has(key);
  }

  private of(kind: ReturnType<typeof objectKind>): ObjectRef[] {
    return this.opts.expected.filter((o) => objectKind(o.key) === kind && this.has(o.key));
  }

  async run(): Promise<void> {
    await this.listing();
    const trust = await this.openKeys();
    const snap = trust ? await this.snapshot() : undefined;
    const indexesSound = await this.indexes(trust);
    if (snap && indexesSound) await this.consistency(snap.snap, snap.repo);
    if (this.opts.mode === 'full')
      await this.readPacks(trust, trust ? await this.scopeKeys(trust) : new Map());
  }

  /** One list pass per prefix: every expected object present with the size the catalog recorded. */
  private async listing(): Promise<void> {
    const prefixes = new Set(
      this.opts.expected.map((o) => (o.key.includes('/') ? o.key.split('/')[0] + '/' : o.key)),
    );
    for (const p of prefixes) for await (const o of this.storage.list(p)) this.present.set(o.key, o.size);
    for (const o of this.opts.expected) {
      const size = this.present.get(o.key);
      if (size === undefined) this.report(o.key, 'missing', 'not in the listing');
      else if (size !== o.size) this.report(o.key, 'size', `${size} bytes, expected ${o.size}`);
    }
    this.rep.objectsChecked = this.opts.expected.length;
  }

  private async openKeys(): Promise<Trust | undefined> {
    const { masterKey } = this.opts;
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

  /** The snapshot's MAC and seal, through the repository's own loader (which also reads a treeRef). */
  private async snapshot(): Promise<{ snap: Snapshot; repo: { reader(): RepoReader } } | undefined> {
    const key = snapshotKey(this.opts.snapshotId);
    if (!this.has(key)) return undefined;
    try {
      const repo = await this.openRepo(this.storage, this.opts.masterKey);
      return { snap: await repo.loadSnapshot(this.opts.snapshotId), repo };
    } catch (err) {
      // A missing pack of a large tree is already in the listing's findings; 'index/' names no object.
      if (err instanceof NotFoundError) return undefined;
      if (err instanceof CorruptionError && err.object?.endsWith('/')) return undefined;
      this.fail(key, err);
      return undefined;
    }
  }

  /** Decodes every expected index object; true when all are present and sound. */
  private async indexes(trust: Trust | undefined): Promise<boolean> {
    let sound = this.opts.expected.every((o) => objectKind(o.key) !== 'index' || this.has(o.key));
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
    return sound;
  }

  /**
   * Every blob the snapshot names is in this copy's index, and every pack holding one exists; the
   * record lists (a table's segments) are read from this copy once their own blobs are there.
   */
  private async consistency(snap: Snapshot, repo: { reader(): RepoReader }): Promise<void> {
    let lost = 0;
    let example = '';
    const sound = new Set<ContentRef>();
    const check = (ref: ContentRef) => {
      let whole = true;
      for (const blob of ref.blobs) {
        const e = this.entries.get(blob);
        if (!e) {
          lost++;
          example ||= blob;
          whole = false;
        } else if (!this.has(packKey(e.pack))) {
          this.report(packKey(e.pack), 'missing', `holds blob ${blob.slice(0, 16)}… of this point`);
          whole = false;
        }
      }
      if (whole) sound.add(ref);
    };
    if (snap.treeRef) check(snap.treeRef);
    try {
      const reader = repo.reader();
      const refs = allContentRefs(snap.tree, reader, (list) => sound.delete(list));
      for await (const ref of refs) {
        check(ref);
        // inline content (a delta's rows of one wedding) is opened; the record list holding it
        // passed its own check, so every copy holds the same bytes: not repairable
        const fault = ref.inline !== undefined && (await inlineFault(reader, ref));
        if (fault) this.report(snapshotKey(snap.id), 'corrupt', fault, false, false);
      }
    } catch (err) {
      this.fail(snapshotKey(snap.id), err);
    }
    if (lost > 0) {
      // Every expected index is sound, so the fault is not in one object a copy could replace.
      this.report(
        snapshotKey(snap.id),
        'missing',
        `${lost} of its blobs are in no index of this copy, e.g. ${example}`,
        false,
        false,
      );
    }
  }

  private async scopeKeys(trust: Trust): Promise<Map<string, KeySet>> {
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

  /** Full mode: reads packs whole (a random `sample` of them), checks hash, header, index and every blob. */
  private async readPacks(trust: Trust | undefined, scopeKeys: Map<string, KeySet>): Promise<void> {
    const packs = sampleOf(this.of('pack'), this.opts.sample);
    const limit = pLimit(this.opts.concurrency);
    await Promise.all(
      packs.map((o) =>
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
    trust: Trust | undefined,
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
      // Blobs of scopes this point does not use have no key here; the pack hash already covers them.
      const keys = scopeKeys.get(`${SCOPE_KEYS_PREFIX}${e.scopeHash}/${e.keyId}`);
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
