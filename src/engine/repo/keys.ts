/** The key hierarchy: master key → repository key (keys/repo) → one data key set per key scope (keys/scopes/…). */
import { randomBytes, randomFillSync } from 'node:crypto';
import { ConfigError, CorruptionError, NotFoundError, WrongKeyError } from '../../errors.js';
import { getBuffer, type Storage } from '../../storage/types.js';
import { isErased, tenantOfScope, type KeyScope } from '../api.js';
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
  // What unwrapping leaves unchecked: the key-check value and the exact encoding, so no changed byte
  // anywhere in the object goes unseen.
  if (file.check !== keyCheck(masterKey, repoId)) throw bad('the key-check value is damaged');
  const canonical = JSON.stringify({
    version: 1,
    repoId,
    check: file.check,
    key: Buffer.from(file.key, 'base64').toString('base64'),
  });
  if (!Buffer.from(canonical).equals(bytes)) throw bad('not in its canonical encoding');
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

/** Opens keys/scopes/<hash>/<keyId> (sealed under the scope-wrap key, AAD = its object key). */
function openScopeKey(keys: WrapKeys, object: string, bytes: Buffer): KeySet {
  const plain = open(keys.scopeWrap, bytes, object);
  if (!plain) throw new CorruptionError(`${object}: scope key fails authentication`, { object });
  const file = JSON.parse(plain.toString('utf8')) as ScopeKeyFile;
  const [scopeHash = '', keyId = ''] = object.slice(SCOPE_KEYS_PREFIX.length).split('/');
  if (hashOfScope(keys, file.scope) !== scopeHash) {
    throw new CorruptionError(`${object}: holds the key of another scope`, { object });
  }
  return {
    scope: file.scope,
    scopeHash,
    keyId,
    encKey: Buffer.from(file.encKey, 'base64'),
    idKey: Buffer.from(file.idKey, 'base64'),
  };
}

/** Opens a scope-key object, a bundle or one key set; returns its sets by key name. */
export function openScopeKeys(keys: WrapKeys, object: string, bytes: Buffer): Map<string, KeySet> {
  const sets = object.startsWith(SCOPE_BUNDLES_PREFIX)
    ? openBundle(keys, object, bytes)
    : [openScopeKey(keys, object, bytes)];
  return new Map(sets.map((s) => [scopeKeyName(s.scopeHash, s.keyId), s]));
}

/**
 * Loads, creates and caches scope key sets. Keys a writer creates are kept in memory and sealed
 * together into one bundle object (persist()) before any index names a blob they encrypt. Erasing a
 * scope (crypto-shredding) removes its key sets from every bundle and object: see eraseScope().
 */
export class ScopeKeys {
  /** The key set each scope is written with, once known. */
  private readonly byScope = new Map<KeyScope, KeySet>();
  /** Scopes whose key set is being looked up or created. */
  private readonly finding = new Map<KeyScope, Promise<KeySet>>();
  /**
   * Key sets opened from bundles or created in this session, by scope hash (usually one each).
   * Keyed by the set's own hash string: a backup touching every wedding adds no string per set.
   */
  private readonly loaded = new Map<string, KeySet[]>();
  /** Key sets read from their own objects (keys/scopes/…), by object name. */
  private readonly byObject = new Map<string, Promise<KeySet>>();
  /** The bundle object holding each bundled key set. */
  private readonly bundled = new Map<KeySet, string>();
  /** Created in this session and not yet in a bundle. */
  private fresh: KeySet[] = [];
  /** Bundles that did not open: a key missing while one of these exists is reported as its damage. */
  private readonly damaged: { object: string; error: Error }[] = [];
  /** Key ids of keys/scopes/<hash>/<keyId> objects (the layout before bundles), by scope hash. */
  private single: Promise<Map<string, string[]>> | undefined;

  constructor(
    private readonly storage: Storage,
    private readonly keys: MetaKeys,
  ) {}

  /**
   * The hashed name of a scope; recent ones remembered. A restore asks once per segment, going
   * through every wedding once per table, so the memory must hold them all (an HMAC each, ~100 bytes
   * each remembered) or it forgets each one before it is asked again.
   */
  scopeHash(scope: KeyScope): string {
    const known = this.byScope.get(scope)?.scopeHash ?? this.recentHashes.get(scope);
    if (known !== undefined) return known;
    const hash = hashOfScope(this.keys, scope);
    if (this.recentHashes.size >= 1 << 17) this.recentHashes.clear();
    this.recentHashes.set(scope, hash);
    return hash;
  }

  private readonly recentHashes = new Map<KeyScope, string>();

  /** The key set to write a scope with; created on first use. No promise once it is known. */
  forScope(scope: KeyScope): KeySet | Promise<KeySet> {
    const known = this.byScope.get(scope);
    if (known) return known;
    let p = this.finding.get(scope);
    if (!p) {
      p = this.findOrCreate(scope).then((set) => {
        this.byScope.set(scope, set);
        return set;
      });
      const settled = () => this.finding.delete(scope);
      p.then(settled, settled);
      this.finding.set(scope, p);
    }
    return p;
  }

  /** The key set an index entry names; NotFoundError once the scope has been erased. */
  async byRef(scopeHash: string, keyId: string): Promise<KeySet> {
    await this.preload();
    const set = this.loadedSet(scopeHash, keyId);
    if (set) return set;
    const object = scopeKeyName(scopeHash, keyId);
    let p = this.byObject.get(object);
    if (!p) {
      p = this.load(object, scopeHash, keyId);
      p.catch(() => this.byObject.delete(object));
      this.byObject.set(object, p);
    }
    return p;
  }

  /** The object a key set is stored in: its bundle, or its own object. Call after preload(). */
  storedIn(scopeHash: string, keyId: string): string {
    const set = this.loadedSet(scopeHash, keyId);
    return (set && this.bundled.get(set)) ?? scopeKeyName(scopeHash, keyId);
  }

  private loadedSet(scopeHash: string, keyId: string): KeySet | undefined {
    return this.loaded.get(scopeHash)?.find((k) => k.keyId === keyId);
  }

  private addLoaded(set: KeySet): void {
    const list = this.loaded.get(set.scopeHash);
    if (list) list.push(set);
    else this.loaded.set(set.scopeHash, [set]);
  }

  /**
   * Lists every scope key and opens every bundle once, so that a backup touching thousands of
   * weddings does not list (and, on object stores, pay a request) per wedding.
   */
  async preload(): Promise<void> {
    await (this.single ??= (async () => {
      const single = new Map<string, string[]>();
      for await (const o of this.storage.list(SCOPE_KEYS_PREFIX)) {
        const [hash, keyId] = o.key.slice(SCOPE_KEYS_PREFIX.length).split('/');
        if (hash && keyId) single.set(hash, [...(single.get(hash) ?? []), keyId]);
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
          // a set loaded before (a bundle rewritten by an erasure holds it now) keeps its object
          const had = this.loadedSet(set.scopeHash, set.keyId);
          if (!had) this.addLoaded(set);
          this.bundled.set(had ?? set, o.key);
        }
      }
      return single;
    })());
  }

  /**
   * Whether a key set of the scope hash (with `keyId`: that one) is stored or was created here;
   * undefined while a bundle fails to open, since a missing key cannot then be told from a damaged one.
   * False means erased (or never written): what prune removes and readers report as not found.
   */
  async holds(scopeHash: string, keyId?: string): Promise<boolean | undefined> {
    await this.preload();
    if (this.damaged.length > 0) return undefined;
    const loaded = this.loaded.get(scopeHash) ?? [];
    const single = (await this.single!).get(scopeHash) ?? [];
    if (keyId === undefined) return loaded.length + single.length > 0;
    return loaded.some((k) => k.keyId === keyId) || single.includes(keyId);
  }

  /** Lists again: a writer that waited for another's lock must see the key sets that one stored. */
  async reload(): Promise<void> {
    this.single = undefined;
    this.damaged.length = 0;
    await this.preload();
  }

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
    for (const set of sets) this.bundled.set(set, object);
    return { key: object, size: bytes.length };
  }

  /**
   * Crypto-shredding: every key set of `scope`, and of its class scopes (`wedding:42/guest-pii` when
   * `wedding:42` goes), leaves every bundle (rewritten without it, the new bundle written before
   * the old one goes) and its own objects are deleted. Returns the objects removed; the key ids
   * destroyed are pushed onto `keyIds`.
   */
  async eraseScope(scope: KeyScope, keyIds: string[] = []): Promise<string[]> {
    const erased = new Set([scope]);
    const covered = (s: string) => isErased(s, erased);
    const hashes = new Set<string>();
    const removed: string[] = [];
    for await (const o of this.storage.list(SCOPE_KEYS_PREFIX)) {
      const [hash = '', keyId = ''] = o.key.slice(SCOPE_KEYS_PREFIX.length).split('/');
      // a single key's scope shows only inside it: opened unless its name already says
      if (hash !== this.scopeHash(scope)) {
        if (tenantOfScope(scope) !== scope) continue; // a class scope has no class scopes
        if (!covered(openScopeKey(this.keys, o.key, await getBuffer(this.storage, o.key)).scope)) continue;
      }
      await this.storage.delete(o.key);
      removed.push(o.key);
      hashes.add(hash);
      keyIds.push(keyId);
    }
    for await (const o of this.storage.list(SCOPE_BUNDLES_PREFIX)) {
      const sets = openBundle(this.keys, o.key, await getBuffer(this.storage, o.key));
      const kept = sets.filter((k) => !covered(k.scope));
      for (const k of sets.filter((set) => covered(set.scope))) {
        keyIds.push(k.keyId);
        hashes.add(k.scopeHash);
      }
      if (kept.length === sets.length) continue;
      if (kept.length > 0) {
        // Named from the old bundle and the scope, not at random: every copy of the repository
        // rewrites the same bundle to the same name, so the copies' object lists stay equal.
        const name = hmac(this.keys.scopeName, `erase/${o.key}/${this.scopeHash(scope)}`)
          .subarray(0, 16)
          .toString('hex');
        const object = `${SCOPE_BUNDLES_PREFIX}${name}`;
        await this.storage.put(object, sealBundle(this.keys, object, kept));
        // the other scopes' keys must be on disk in the new bundle before the old one goes
        await this.storage.sync?.();
      }
      await this.storage.delete(o.key);
      removed.push(o.key);
    }
    this.forget(covered, hashes);
    return removed;
  }

  /** Drops what memory holds of erased scopes' key sets, so nothing here still opens their blobs. */
  private forget(covered: (scope: string) => boolean, hashes: Set<string>): void {
    for (const set of [...this.byScope.values(), ...this.fresh])
      if (covered(set.scope)) hashes.add(set.scopeHash);
    for (const hash of hashes) {
      for (const set of this.loaded.get(hash) ?? []) this.bundled.delete(set);
      this.loaded.delete(hash);
      for (const name of [...this.byObject.keys()])
        if (name.startsWith(`${SCOPE_KEYS_PREFIX}${hash}/`)) this.byObject.delete(name);
    }
    this.fresh = this.fresh.filter((k) => !covered(k.scope));
    for (const s of [...this.byScope.keys()]) if (covered(s)) this.byScope.delete(s);
    this.single = undefined;
  }

  private async findOrCreate(scope: KeyScope): Promise<KeySet> {
    const hash = this.scopeHash(scope);
    await this.preload();
    const keyIds = [
      ...(this.loaded.get(hash) ?? []).map((k) => k.keyId),
      ...((await this.single!).get(hash) ?? []),
    ];
    if (keyIds.length === 0) {
      // Two writers creating the same scope at once each make their own key id; both stay
      // valid (index entries name the key id), so a race wastes dedup, never data.
      const secret = this.newSecret();
      const set: KeySet = {
        scope,
        scopeHash: hash,
        keyId: secret.toString('hex', 64, 72),
        encKey: secret.subarray(0, 32),
        idKey: secret.subarray(32, 64),
      };
      this.fresh.push(set);
      this.addLoaded(set);
      return set;
    }
    // every writer picks the same key set of a scope that has several
    const keyId = keyIds.sort()[0]!;
    const set = await this.byRef(hash, keyId);
    if (set.scope !== scope) {
      throw new CorruptionError(`scope key ${hash}/${keyId} belongs to another scope`, {
        object: this.storedIn(hash, keyId),
      });
    }
    return set;
  }

  /**
   * 72 fresh random bytes (two keys and a key id) from a slab filled 256 key sets at a time: a
   * backup creates a key set per wedding, and a CSPRNG call and a buffer each cost more than the keys.
   */
  private newSecret(): Buffer {
    if (this.slabAt + 72 > this.slab.length) {
      this.slab = randomFillSync(Buffer.allocUnsafeSlow(72 * 256));
      this.slabAt = 0;
    }
    this.slabAt += 72;
    return this.slab.subarray(this.slabAt - 72, this.slabAt);
  }

  private slab = Buffer.alloc(0);
  private slabAt = 0;

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
    return openScopeKey(this.keys, object, sealed);
  }
}
