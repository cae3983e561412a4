/** Proves that some bytes are a sound copy of one repository object: what the validator checks before it trusts or writes anything. */
import { CorruptionError } from '../../errors.js';
import type { BlobEntry } from '../repo/blob.js';
import { equalBytes, hmac, open, sha256Hex } from '../repo/crypto.js';
import { decodeIndex, INDEX_PREFIX } from '../repo/index.js';
import {
  deriveMetaKeys,
  openBundle,
  REPO_KEY_OBJECT,
  SCOPE_BUNDLES_PREFIX,
  SCOPE_KEYS_PREFIX,
  scopeKeyName,
  unwrapRepoKey,
  type KeySet,
  type MetaKeys,
} from '../repo/keys.js';
import { DATA_PREFIX, packKey, verifyPackBytes } from '../repo/pack.js';
import { CONFIG_OBJECT, FORMAT_VERSION, type RepoConfig } from '../repo/repository.js';
import { decodeSnapshot, SNAPSHOTS_PREFIX } from '../repo/snapshot.js';

/** What a copy's objects are checked against: the master key and the repository key it opens. */
export interface Trust {
  masterKey: Buffer;
  keys: MetaKeys;
  repoId: string;
}

export type ObjectKind = 'config' | 'repo-key' | 'scope-key' | 'pack' | 'index' | 'snapshot' | 'other';

export function objectKind(key: string): ObjectKind {
  if (key === CONFIG_OBJECT) return 'config';
  if (key === REPO_KEY_OBJECT) return 'repo-key';
  if (key.startsWith(SCOPE_KEYS_PREFIX) || key.startsWith(SCOPE_BUNDLES_PREFIX)) return 'scope-key';
  if (key.startsWith(DATA_PREFIX)) return 'pack';
  if (key.startsWith(INDEX_PREFIX)) return 'index';
  if (key.startsWith(SNAPSHOTS_PREFIX)) return 'snapshot';
  return 'other';
}

const bad = (object: string, why: string) => new CorruptionError(`${object}: ${why}`, { object });

/**
 * Opens keys/repo, then checks what unwrapping leaves unchecked: the key-check value (only read when
 * the key fails) and the exact encoding, so no changed byte anywhere in the object goes unseen.
 * WrongKeyError when it is wrapped under another master key.
 */
export function openRepoKey(
  masterKey: Buffer,
  bytes: Buffer,
): { repoId: string; repoKey: Buffer; keys: MetaKeys } {
  const { repoId, repoKey } = unwrapRepoKey(masterKey, bytes);
  const file = JSON.parse(bytes.toString('utf8')) as { key: string; check: string };
  // FORMAT.md §2: check = first 16 bytes of HMAC(master key, "wedvault/v1/key-check/<repoId>"), hex.
  const check = hmac(masterKey, 'wedvault/v1/key-check/', repoId).subarray(0, 16).toString('hex');
  if (file.check !== check) throw bad(REPO_KEY_OBJECT, 'the key-check value is damaged');
  const canonical = JSON.stringify({
    version: 1,
    repoId,
    check,
    key: Buffer.from(file.key, 'base64').toString('base64'),
  });
  if (!Buffer.from(canonical).equals(bytes)) throw bad(REPO_KEY_OBJECT, 'not in its canonical encoding');
  return { repoId, repoKey, keys: deriveMetaKeys(repoKey) };
}

/** Checks the config's MAC, its exact encoding (hex case included) and the repository it names. */
export function openConfig(keys: MetaKeys, repoId: string, bytes: Buffer): RepoConfig {
  let outer: { payload?: unknown; mac?: unknown };
  try {
    outer = JSON.parse(bytes.toString('utf8')) as typeof outer;
  } catch {
    throw bad(CONFIG_OBJECT, 'not valid JSON');
  }
  if (typeof outer?.payload !== 'string') throw bad(CONFIG_OBJECT, 'unknown structure');
  const mac = hmac(keys.mac, CONFIG_OBJECT, outer.payload).toString('hex');
  if (!Buffer.from(JSON.stringify({ payload: outer.payload, mac })).equals(bytes)) {
    throw bad(CONFIG_OBJECT, 'MAC does not verify');
  }
  const config = JSON.parse(outer.payload) as RepoConfig;
  if (config.version !== FORMAT_VERSION)
    throw bad(CONFIG_OBJECT, `unknown version ${String(config.version)}`);
  if (config.id !== repoId)
    throw bad(CONFIG_OBJECT, `names repository ${config.id}, keys/repo names ${repoId}`);
  return config;
}

/** Opens a scope-key object: a bundle of key sets or one key set; returns them by key name. */
export function openScopeKeys(keys: MetaKeys, key: string, bytes: Buffer): Map<string, KeySet> {
  const sets = key.startsWith(SCOPE_BUNDLES_PREFIX)
    ? openBundle(keys, key, bytes)
    : [openScopeKey(keys, key, bytes)];
  return new Map(sets.map((s) => [scopeKeyName(s.scopeHash, s.keyId), s]));
}

/** Opens a scope key set (FORMAT.md §1: sealed under the scope-wrap key, AAD = its object key). */
export function openScopeKey(keys: MetaKeys, key: string, bytes: Buffer): KeySet {
  const plain = open(keys.scopeWrap, bytes, key);
  if (!plain) throw bad(key, 'scope key fails authentication');
  const file = JSON.parse(plain.toString('utf8')) as { scope: string; encKey: string; idKey: string };
  const [scopeHash = '', keyId = ''] = key.slice(SCOPE_KEYS_PREFIX.length).split('/');
  if (hmac(keys.scopeName, file.scope).subarray(0, 16).toString('hex') !== scopeHash) {
    throw bad(key, 'holds the key of another scope');
  }
  return {
    scope: file.scope,
    scopeHash,
    keyId,
    encKey: Buffer.from(file.encKey, 'base64'),
    idKey: Buffer.from(file.idKey, 'base64'),
  };
}

/** Throws CorruptionError (or WrongKeyError) unless `bytes` are a sound copy of `key` in the trusted repository. */
export function verifyObjectBytes(trust: Trust, key: string, bytes: Buffer): void {
  switch (objectKind(key)) {
    case 'config':
      openConfig(trust.keys, trust.repoId, bytes);
      return;
    case 'repo-key': {
      const { repoId, repoKey } = openRepoKey(trust.masterKey, bytes);
      if (repoId !== trust.repoId || !equalBytes(repoKey, trust.keys.repoKey)) {
        throw bad(key, `belongs to repository ${repoId}, not ${trust.repoId}`);
      }
      return;
    }
    case 'scope-key':
      openScopeKeys(trust.keys, key, bytes);
      return;
    case 'pack':
      verifyPackBytes(trust.keys.meta, key, bytes);
      return;
    case 'index':
      decodeIndex(trust.keys.meta, key, bytes);
      return;
    case 'snapshot':
      decodeSnapshot(trust.keys, key, bytes);
      return;
    case 'other':
      throw bad(key, 'not a repository object the validator can verify');
  }
}

/**
 * The pack these bytes really are, when they are another pack of this copy stored under the wrong
 * name. Any changed bytes hash to *some* name, so only a pack the copy is known to hold counts.
 */
export function identifyPack(
  trust: Trust,
  bytes: Buffer,
  known: (key: string) => boolean,
): string | undefined {
  const real = packKey(sha256Hex(bytes));
  if (!known(real)) return undefined;
  try {
    verifyPackBytes(trust.keys.meta, real, bytes);
    return real;
  } catch {
    return undefined;
  }
}

/** The index these bytes really are, when they are a sound index stored under another index's name. */
export function identifyIndex(
  trust: Trust,
  bytes: Buffer,
): { key: string; packs: { id: string; blobs: BlobEntry[] }[] } | undefined {
  const real = `${INDEX_PREFIX}${sha256Hex(bytes)}`;
  try {
    return { key: real, packs: decodeIndex(trust.keys.meta, real, bytes) };
  } catch {
    return undefined;
  }
}

/** The repository id an object claims, unverified: tells "another repository lives here" from damage. */
export function claimedRepoId(key: string, bytes: Buffer): string | undefined {
  try {
    const o = JSON.parse(bytes.toString('utf8')) as { payload?: string; repoId?: string };
    const id: unknown = key === CONFIG_OBJECT ? (JSON.parse(o.payload ?? '') as RepoConfig).id : o.repoId;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}
