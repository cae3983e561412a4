/** The config object (FORMAT.md): the repository's id, format version and chunker, MACed under the repository key. */
import { CorruptionError, FatalError } from '../../errors.js';
import type { ChunkerParams } from './chunker.js';
import { hmac } from './crypto.js';
import type { MetaKeys } from './keys.js';

export const CONFIG_OBJECT = 'config';
export const FORMAT_VERSION = 1;

export interface RepoConfig {
  version: 1;
  id: string;
  created: string;
  chunker: ChunkerParams;
}

export function encodeConfig(keys: MetaKeys, config: RepoConfig): Buffer {
  const payload = JSON.stringify(config);
  return Buffer.from(
    JSON.stringify({ payload, mac: hmac(keys.mac, CONFIG_OBJECT, payload).toString('hex') }),
  );
}

const bad = (why: string) => new CorruptionError(`${CONFIG_OBJECT}: ${why}`, { object: CONFIG_OBJECT });

/**
 * Opens the config: its MAC and exact encoding (hex case included, so no changed byte goes unseen),
 * its version (FatalError for a format this build does not read) and the repository it names.
 */
export function decodeConfig(keys: MetaKeys, repoId: string, bytes: Buffer): RepoConfig {
  let outer: { payload?: unknown; mac?: unknown };
  try {
    outer = JSON.parse(bytes.toString('utf8')) as typeof outer;
  } catch {
    throw bad('not valid JSON');
  }
  if (typeof outer?.payload !== 'string' || typeof outer.mac !== 'string') throw bad('unknown structure');
  const mac = hmac(keys.mac, CONFIG_OBJECT, outer.payload).toString('hex');
  if (!Buffer.from(JSON.stringify({ payload: outer.payload, mac })).equals(bytes)) {
    throw bad('MAC does not verify');
  }
  const config = JSON.parse(outer.payload) as RepoConfig;
  if (config.version !== FORMAT_VERSION) {
    throw new FatalError(
      `repository format version ${String(config.version)} is not supported (this build reads 1)`,
    );
  }
  if (config.id !== repoId) throw bad(`names repository ${config.id}, keys/repo names ${repoId}`);
  return config;
}
