/** The key hierarchy: master key → repository key (keys/repo) → one data key set per key scope (keys/scopes/…). */
import { randomBytes } from 'node:crypto';
import { ConfigError, CorruptionError, NotFoundError, WrongKeyError } from '../../errors.js';
import { getBuffer, type Storage } from '../../storage/types.js';
import type { KeyScope } from '../api.js';
import { deriveKey, hmac, open, seal } from './crypto.js';

export const REPO_KEY_OBJECT = 'keys/repo';
export const SCOPE_KEYS_PREFIX = 'keys/scopes/';
/** Key sets a backup created, one sealed object per writer session instead of one per scope. */
export const SCOPE_BUNDLES_PREFIX = 'keys/bundles/';

/** The name a key set is known by (index entries name scopeHash and keyId), wherever it is stored. */
export const scopeKeyName = (scopeHash: string, keyId: string): string =>
  `${SCOPE_KEYS_PREFIX}${scopeHash}/${keyId}`;

/** Keys derived from the repository key, each for one purpose. */
export interface MetaKeys {
  repoKey: Buffer;
  /** Seals index, pack headers and snapshots. */
  meta: Buffer;
  /** MACs the config and snapshot objects. */
  mac: Buffer;
  /** Hashes scope names, so object names do not reveal which weddings exist. */
  scopeName: Buffer;
  /** Wraps scope key sets. */
  scopeWrap: Buffer;
  /** Seeds the chunker's gear table: secret, so boundaries reveal nothing. */
  gearSeed: Buffer;
}

export interface KeySet {
  scope: KeyScope;
  scopeHash: string;
  keyId: string;
  encKey: Buffer;
  /** HMAC key for blob ids: ids are scope-keyed, so dedup stays inside a scope. */
  idKey: Buffer;
}

export function checkMasterKey(masterKey: Buffer): void {
  if (!Buffer.isBuffer(masterKey) || masterKey.length !== 32) {
    throw new ConfigError('the master key must be 32 bytes');
  }
}

export function deriveMetaKeys(repoKey: Buffer): MetaKeys {
  return {
    repoKey,
    meta: deriveKey(repoKey, 'meta'),
    mac: deriveKey(repoKey, 'mac'),
    scopeName: deriveKey(repoKey, 'scope-name'),
    scopeWrap: deriveKey(repoKey, 'scope-wrap'),
    gearSeed: deriveKey(repoKey, 'chunker-gear'),
  };
}

interface RepoKeyFile {
  version: 1;
  repoId: string;
  /** HMAC of the master key: tells a wrong key from a damaged object. */
  check: string;
  key: string;
}

const keyCheck = (masterKey: Buffer, repoId: string) =>
  hmac(masterKey, 'wedvault/v1/key-check/', repoId).subarray(0, 16).toString('hex');

export function wrapRepoKey(masterKey: Buffer, repoId: string, repoKey: Buffer): Buffer {
  const file: RepoKeyFile = {
    version: 1,
    repoId,
    check: keyCheck(masterKey, repoId),
    key: seal(masterKey, repoKey, `${REPO_KEY_OBJECT}:${repoId}`).toString('base64'),
  };
  return Buffer.from(JSON.stringify(file));
}

/** Opens keys/repo; the repository id inside is authenticated as the AAD of the wrapped key. */
export function unwrapRepoKey(masterKey: Buffer, bytes: Buffer): { repoId: string; repoKey: Buffer } {
  const bad = (why: string) => new CorruptionError(`${REPO_KEY_OBJECT}: ${why}`, { object: REPO_KEY_OBJECT });
  let file: RepoKeyFile;
  try {
    file = JSON.parse(bytes.toString('utf8')) as RepoKeyFile;
  } catch {
    throw bad('not valid JSON');
  }
  if (
    file?.version !== 1 ||
    typeof file.key !== 'string' ||
    typeof file.check !== 'string' ||
    typeof file.repoId !== 'string'
  ) {
    throw bad('unknown structure');
  }
  const repoId = file.repoId;
  const repoKey = open(masterKey, Buffer.from(file.key, 'base64'), `${REPO_KEY_OBJECT}:${repoId}`);
  if (!repoKey || repoKey.length !== 32) {
    // The check value tells a wrong key from damaged bytes (unless the damage hit the check itself).
    if (file.check !== keyCheck(masterKey, repoId)) {
      throw new WrongKeyError(`wrong master key for repository ${repoId}`);
    }
    throw bad('the wrapped repository key fails authentication');
  }
  return { repoId, repoKey };
}

interface ScopeKeyFile {
  scope: string;
  encKey: string;
  idKey: string;
}

interface BundleFile {
  version: 1;
  keys: (ScopeKeyFile & { keyId: string })[];
}

type WrapKeys = Pick<MetaKeys, 'scopeWrap' | 'scopeName'>;

const hashOfScope = (keys: WrapKeys, scope: string) =>
  hmac(keys.scopeName, scope).subarray(0, 16).toString('hex');

export function sealBundle(keys: WrapKeys, object: string, sets: KeySet[]): Buffer {
  const file: BundleFile = {
    version: 1,
    keys: sets.map((k) => ({
      scope: k.scope,
      keyId: k.keyId,
      encKey: k.encKey.toString('base64'),
      idKey: k.idKey.toString('base64'),
    })),
  };
  return seal(keys.scopeWrap, Buffer.from(JSON.stringify(file)), object);
}

/** Opens keys/bundles/<id>; sealed under the scope-wrap key with the object key as AAD. */
export function openBundle(keys: WrapKeys, object: string, bytes: Buffer): KeySet[] {
  const bad = (why: string) => new CorruptionError(`${object}: ${why}`, { object });
  const plain = open(keys.scopeWrap, bytes, object);
  if (!plain) throw bad('key bundle fails authentication');
  const file = JSON.parse(plain.toString('utf8')) as BundleFile;
  if (file.version !== 1 || !Array.isArray(file.keys)) throw bad('unknown key bundle structure');
  return file.keys.map((k) => ({
    scope: k.scope,
    scopeHash: hashOfScope(keys, k.scope),
    keyId: k.keyId,
    encKey: Buffer.from(k.encKey, 'base64'),
    idKey: Buffer.from(k.idKey, 'base64'),
  }));
}

/**
 * Loads, creates and caches scope key sets. Keys a writer creates are kept in memory and sealed
 * together into one bundle object (persist()) before any index names a blob they encrypt. Erasing a
 * scope (crypto-shredding) removes its key sets from every bundle and object: see eraseScope().
 */
export class ScopeKeys {
  private readonly byScope = new Map<KeyScope, Promise<KeySet>>();
  private readonly byObject = new Map<string, Promise<KeySet>>();
  /** Key name → the bundle object holding it. */
  private readonly bundled = new Map<string, string>();
  /** Key sets opened from bundles or created in this session, by key name. */
  private readonly loaded = new Map<string, KeySet>();
  /** Created in this session and not yet in a bundle. */
  private fresh: KeySet[] = [];
  /** Bundles that did not open: a key missing while one of these exists is reported as its damage. */
  private readonly damaged: { object: string; error: Error }[] = [];

  constructor(
    private readonly storage: Storage,
    private readonly keys: MetaKeys,
  ) {}

  scopeHash(scope: KeyScope): string {
    return hashOfScope(this.keys, scope);
  }

  /** The key set to write a scope with; created on first use. */
  forScope(scope: KeyScope): Promise<KeySet> {
    let p = this.byScope.get(scope);
    if (!p) {
      p = this.findOrCreate(scope);
      p.catch(() => this.byScope.delete(scope));
      this.byScope.set(scope, p);
    }
    return p;
  }

  /** The key set an index entry names; NotFoundError once the scope has been erased. */
  byRef(scopeHash: string, keyId: string): Promise<KeySet> {
    const object = scopeKeyName(scopeHash, keyId);
    let p = this.byObject.get(object);
    if (!p) {
      p = this.preload().then(() => this.loaded.get(object) ?? this.load(object, scopeHash, keyId));
      p.catch(() => this.byObject.delete(object));
      this.byObject.set(object, p);
    }
    return p;
  }

  /** The object a key set is stored in: its bundle, or its own object. Call after preload(). */
  storedIn(scopeHash: string, keyId: string): string {
    const name = scopeKeyName(scopeHash, keyId);
    return this.bundled.get(name) ?? name;
  }

  /**
   * Lists every scope key and opens every bundle once, so that a backup touching thousands of
   * weddings does not list (and, on object stores, pay a request) per wedding.
   */
  preload(): Promise<void> {
    this.known ??= (async () => {
      const known = new Map<string, string[]>();
      const note = (hash: string, keyId: string) => known.set(hash, [...(known.get(hash) ?? []), keyId]);
      for await (const o of this.storage.list(SCOPE_KEYS_PREFIX)) {
        const [hash, keyId] = o.key.slice(SCOPE_KEYS_PREFIX.length).split('/');
        if (hash && keyId) note(hash, keyId);
      }
      for await (const o of this.storage.list(SCOPE_BUNDLES_PREFIX)) {
        let sets: KeySet[];
        try {
          sets = openBundle(this.keys, o.key, await getBuffer(this.storage, o.key));
        } catch (err) {
          if (!(err instanceof CorruptionError || err instanceof NotFoundError)) throw err;
          this.damaged.push({ object: o.key, error: err });
          continue;
        }
        for (const set of sets) {
          const name = scopeKeyName(set.scopeHash, set.keyId);
          this.bundled.set(name, o.key);
          this.loaded.set(name, set);
          note(set.scopeHash, set.keyId);
        }
      }
      return known;
    })();
    return this.known.then(() => undefined);
  }

  private known: Promise<Map<string, string[]>> | undefined;

  /** Seals the key sets created since the last call into one bundle; before an index names their blobs. */
  async persist(): Promise<{ key: string; size: number } | undefined> {
    const sets = this.fresh;
    if (sets.length === 0) return undefined;
    this.fresh = [];
    const object = `${SCOPE_BUNDLES_PREFIX}${randomBytes(16).toString('hex')}`;
    const bytes = sealBundle(this.keys, object, sets);
    try {
      await this.storage.put(object, bytes, { size: bytes.length });
    } catch (err) {
      this.fresh.unshift(...sets);
      throw err;
    }
    for (const set of sets) this.bundled.set(scopeKeyName(set.scopeHash, set.keyId), object);
    return { key: object, size: bytes.length };
  }

  /**
   * Crypto-shredding: every key set of `scope` leaves every bundle (rewritten without it, the new
   * bundle written before the old one goes) and its own objects are deleted. Returns the objects removed.
   */
  async eraseScope(scope: KeyScope): Promise<string[]> {
    const hash = this.scopeHash(scope);
    const removed: string[] = [];
    for await (const o of this.storage.list(`${SCOPE_KEYS_PREFIX}${hash}/`)) {
      await this.storage.delete(o.key);
      removed.push(o.key);
    }
    for await (const o of this.storage.list(SCOPE_BUNDLES_PREFIX)) {
      const sets = openBundle(this.keys, o.key, await getBuffer(this.storage, o.key));
      const kept = sets.filter((k) => k.scopeHash !== hash);
      if (kept.length === sets.length) continue;
      if (kept.length > 0) {
        const object = `${SCOPE_BUNDLES_PREFIX}${randomBytes(16).toString('hex')}`;
        await this.storage.put(object, sealBundle(this.keys, object, kept));
      }
      await this.storage.delete(o.key);
      removed.push(o.key);
    }
    for (const map of [this.byObject, this.loaded, this.bundled]) {
      for (const name of [...map.keys()])
        if (name.startsWith(`${SCOPE_KEYS_PREFIX}${hash}/`)) map.delete(name);
    }
    this.fresh = this.fresh.filter((k) => k.scopeHash !== hash);
    this.byScope.delete(scope);
    this.known = undefined;
    return removed;
  }

  private async findOrCreate(scope: KeyScope): Promise<KeySet> {
    const hash = this.scopeHash(scope);
    await this.preload();
    const existing = [...((await this.known!).get(hash) ?? [])];
    if (existing.length === 0) {
      // Two writers creating the same scope at once each make their own key id; both stay
      // valid (index entries name the key id), so a race wastes dedup, never data.
      // both keys in one allocation: a backup holds a key set per wedding
      const secret = randomBytes(64);
      const set: KeySet = {
        scope,
        scopeHash: hash,
        keyId: randomBytes(8).toString('hex'),
        encKey: secret.subarray(0, 32),
        idKey: secret.subarray(32),
      };
      this.fresh.push(set);
      this.loaded.set(scopeKeyName(hash, set.keyId), set);
      return set;
    }
    const keyId = existing.sort()[0]!;
    const set = await this.byRef(hash, keyId);
    if (set.scope !== scope) {
      throw new CorruptionError(`scope key ${hash}/${keyId} belongs to another scope`, {
        object: this.storedIn(hash, keyId),
      });
    }
    return set;
  }

  private async load(object: string, scopeHash: string, keyId: string): Promise<KeySet> {
    let sealed: Buffer;
    try {
      sealed = await getBuffer(this.storage, object);
    } catch (err) {
      if (err instanceof NotFoundError) {
        const damage = this.damaged[0];
        if (damage) {
          throw new CorruptionError(`scope key ${scopeHash}/${keyId}: not found; ${damage.error.message}`, {
            object: damage.object,
            cause: damage.error,
          });
        }
        throw new NotFoundError(`scope key ${object} does not exist (erased or never written)`, {
          cause: err,
        });
      }
      throw err;
    }
    const plain = open(this.keys.scopeWrap, sealed, object);
    if (!plain) throw new CorruptionError(`${object}: scope key fails authentication`, { object });
    const file = JSON.parse(plain.toString('utf8')) as ScopeKeyFile;
    const set: KeySet = {
      scope: file.scope,
      scopeHash,
      keyId,
      encKey: Buffer.from(file.encKey, 'base64'),
      idKey: Buffer.from(file.idKey, 'base64'),
    };
    if (this.scopeHash(set.scope) !== scopeHash) {
      throw new CorruptionError(`${object}: holds the key of another scope`, { object });
    }
    return set;
  }
}
