/** The key hierarchy: master key → repository key (keys/repo) → one data key set per key scope (keys/scopes/…). */
import { randomBytes } from 'node:crypto';
import { ConfigError, CorruptionError, NotFoundError, WrongKeyError } from '../../errors.js';
import { getBuffer, type Storage } from '../../storage/types.js';
import type { KeyScope } from '../api.js';
import { deriveKey, hmac, open, seal } from './crypto.js';

export const REPO_KEY_OBJECT = 'keys/repo';
export const SCOPE_KEYS_PREFIX = 'keys/scopes/';

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

/** Loads, creates and caches scope key sets. Deleting keys/scopes/<hash>/ erases a scope (crypto-shredding). */
export class ScopeKeys {
  private readonly byScope = new Map<KeyScope, Promise<KeySet>>();
  private readonly byObject = new Map<string, Promise<KeySet>>();

  constructor(
    private readonly storage: Storage,
    private readonly keys: MetaKeys,
  ) {}

  scopeHash(scope: KeyScope): string {
    return hmac(this.keys.scopeName, scope).subarray(0, 16).toString('hex');
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
    const object = `${SCOPE_KEYS_PREFIX}${scopeHash}/${keyId}`;
    let p = this.byObject.get(object);
    if (!p) {
      p = this.load(object, scopeHash, keyId);
      p.catch(() => this.byObject.delete(object));
      this.byObject.set(object, p);
    }
    return p;
  }

  /**
   * Lists every scope key once, so that a backup touching thousands of weddings does not list
   * (and, on object stores, pay a request) per wedding. Keys created later are still found.
   */
  preload(): Promise<void> {
    this.known ??= (async () => {
      const known = new Map<string, string[]>();
      for await (const o of this.storage.list(SCOPE_KEYS_PREFIX)) {
        const [hash, keyId] = o.key.slice(SCOPE_KEYS_PREFIX.length).split('/');
        if (!hash || !keyId) continue;
        known.set(hash, [...(known.get(hash) ?? []), keyId]);
      }
      return known;
    })();
    return this.known.then(() => undefined);
  }

  private known: Promise<Map<string, string[]>> | undefined;

  private async findOrCreate(scope: KeyScope): Promise<KeySet> {
    const hash = this.scopeHash(scope);
    const preloaded = this.known ? (await this.known).get(hash) : undefined;
    const existing = preloaded ? [...preloaded] : this.known ? [] : await this.listKeyIds(hash);
    if (existing.length === 0) {
      // Two writers creating the same scope at once each write their own key id; both stay
      // valid (index entries name the key id), so a race wastes dedup, never data.
      const keyId = randomBytes(8).toString('hex');
      const file: ScopeKeyFile = {
        scope,
        encKey: randomBytes(32).toString('base64'),
        idKey: randomBytes(32).toString('base64'),
      };
      const object = `${SCOPE_KEYS_PREFIX}${hash}/${keyId}`;
      await this.storage.put(object, seal(this.keys.scopeWrap, Buffer.from(JSON.stringify(file)), object));
      if (!this.known) {
        existing.push(...(await this.listKeyIds(hash)));
        if (!existing.includes(keyId)) existing.push(keyId);
      } else {
        // just written: use it without reading it back
        const set: KeySet = {
          scope,
          scopeHash: hash,
          keyId,
          encKey: Buffer.from(file.encKey, 'base64'),
          idKey: Buffer.from(file.idKey, 'base64'),
        };
        this.byObject.set(object, Promise.resolve(set));
        return set;
      }
    }
    const keyId = existing.sort()[0]!;
    const set = await this.byRef(hash, keyId);
    if (set.scope !== scope) {
      throw new CorruptionError(`scope key ${hash}/${keyId} belongs to another scope`, {
        object: `${SCOPE_KEYS_PREFIX}${hash}/${keyId}`,
      });
    }
    return set;
  }

  private async listKeyIds(hash: string): Promise<string[]> {
    const ids: string[] = [];
    for await (const o of this.storage.list(`${SCOPE_KEYS_PREFIX}${hash}/`))
      ids.push(o.key.split('/').pop()!);
    return ids;
  }

  private async load(object: string, scopeHash: string, keyId: string): Promise<KeySet> {
    let sealed: Buffer;
    try {
      sealed = await getBuffer(this.storage, object);
    } catch (err) {
      if (err instanceof NotFoundError) {
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
