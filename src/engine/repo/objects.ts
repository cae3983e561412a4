/** What a sound copy of one repository object is, by kind: what a multi-copy check asks before it trusts or copies bytes. */
import { CorruptionError } from '../../errors.js';
import type { BlobEntry } from './blob.js';
import { CONFIG_OBJECT, decodeConfig, type RepoConfig } from './config.js';
import { equalBytes, sha256Hex } from './crypto.js';
import { decodeIndex, INDEX_PREFIX } from './index.js';
import {
  deriveMetaKeys,
  openScopeKeys,
  REPO_KEY_OBJECT,
  SCOPE_BUNDLES_PREFIX,
  SCOPE_KEYS_PREFIX,
  unwrapRepoKey,
  type MetaKeys,
} from './keys.js';
import { DATA_PREFIX, packKey, verifyPackBytes } from './pack.js';
import { decodeSnapshot, SNAPSHOTS_PREFIX } from './snapshot.js';
import { decodeLedgerEntry, LEDGER_PREFIX } from './ledger.js';
import { CHANGES_PREFIX, decodeSegment } from './segments.js';

/** What a copy's objects are checked against: the master key and the repository key it opens. */
export interface Trust {
  masterKey: Buffer;
  keys: MetaKeys;
  repoId: string;
}

export type ObjectKind =
  'config' | 'repo-key' | 'scope-key' | 'pack' | 'index' | 'snapshot' | 'ledger' | 'segment' | 'other';

export function objectKind(key: string): ObjectKind {
  if (key === CONFIG_OBJECT) return 'config';
  if (key === REPO_KEY_OBJECT) return 'repo-key';
  if (key.startsWith(SCOPE_KEYS_PREFIX) || key.startsWith(SCOPE_BUNDLES_PREFIX)) return 'scope-key';
  if (key.startsWith(DATA_PREFIX)) return 'pack';
  if (key.startsWith(INDEX_PREFIX)) return 'index';
  if (key.startsWith(SNAPSHOTS_PREFIX)) return 'snapshot';
  if (key.startsWith(LEDGER_PREFIX)) return 'ledger';
  if (key.startsWith(CHANGES_PREFIX)) return 'segment';
  return 'other';
}

const bad = (object: string, why: string) => new CorruptionError(`${object}: ${why}`, { object });

/** Opens keys/repo under the master key; WrongKeyError when it is wrapped under another one. */
export function openRepoKey(masterKey: Buffer, bytes: Buffer): { repoId: string; keys: MetaKeys } {
  const { repoId, repoKey } = unwrapRepoKey(masterKey, bytes);
  return { repoId, keys: deriveMetaKeys(repoKey) };
}

/** Throws CorruptionError (or WrongKeyError) unless `bytes` are a sound copy of `key` in the trusted repository. */
export function verifyObjectBytes(trust: Trust, key: string, bytes: Buffer): void {
  switch (objectKind(key)) {
    case 'config':
      decodeConfig(trust.keys, trust.repoId, bytes);
      return;
    case 'repo-key': {
      const { repoId, keys } = openRepoKey(trust.masterKey, bytes);
      if (repoId !== trust.repoId || !equalBytes(keys.repoKey, trust.keys.repoKey)) {
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
    case 'ledger':
      decodeLedgerEntry(trust.keys, key, bytes);
      return;
    case 'segment':
      decodeSegment(trust.keys, key, bytes);
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
  trust: Pick<Trust, 'keys'>,
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
  trust: Pick<Trust, 'keys'>,
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
