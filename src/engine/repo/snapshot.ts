/** Snapshot manifests: sealed under the repository's meta key and MACed, stored as snapshots/<id>. */
import { CorruptionError } from '../../errors.js';
import type { ContentReader, ContentRef, WriteStats } from '../api.js';
import { equalBytes, hmac, open, seal } from './crypto.js';
import type { MetaKeys } from './keys.js';
import { parseRecord, readLineRuns, readRecordBatches, scanBlobIds } from './records.js';

export const SNAPSHOTS_PREFIX = 'snapshots/';
const MAC_BYTES = 32;

/** Write stats; sources may add counters of their own. */
export type SnapshotStats = WriteStats;

export interface ConsistentPoint {
  time?: string | undefined;
  lsn?: string | undefined;
  [key: string]: unknown;
}

export interface SnapshotSummary {
  version: 1;
  id: string;
  time: string;
  type: string;
  parent?: string | undefined;
  hostname: string;
  tags: Record<string, string>;
  stats: SnapshotStats;
  consistentPoint?: ConsistentPoint | undefined;
  /** Set when the tree was too big to keep inline: the tree's JSON is stored as content. */
  treeRef?: ContentRef | undefined;
}

export interface Snapshot extends SnapshotSummary {
  /** What the sources recorded: arbitrary JSON holding ContentRefs. */
  tree: unknown;
}

export const snapshotKey = (id: string): string => `${SNAPSHOTS_PREFIX}${id}`;

/**
 * sealed(JSON) ‖ HMAC(mac key, key ‖ sealed) under the meta key with AAD `<role>:<key>`: a changed
 * byte or a renamed object fails the MAC. Snapshots and change segments are stored so.
 */
export function sealManifest(keys: MetaKeys, role: string, key: string, manifest: unknown): Buffer {
  const sealed = seal(keys.meta, Buffer.from(JSON.stringify(manifest)), `${role}:${key}`);
  return Buffer.concat([sealed, hmac(keys.mac, key, sealed)]);
}

/** The JSON sealManifest stored, checked; a CorruptionError naming the object otherwise. */
export function openManifest(keys: MetaKeys, role: string, key: string, bytes: Buffer): unknown {
  const bad = (why: string) => new CorruptionError(`${key}: ${why}`, { object: key });
  if (bytes.length < MAC_BYTES) throw bad('too short');
  const sealed = bytes.subarray(0, bytes.length - MAC_BYTES);
  if (!equalBytes(hmac(keys.mac, key, sealed), bytes.subarray(bytes.length - MAC_BYTES))) {
    throw bad('MAC does not verify (changed or not from this repository)');
  }
  const plain = open(keys.meta, sealed, `${role}:${key}`);
  if (!plain) throw bad('fails authentication');
  return JSON.parse(plain.toString('utf8'));
}

export function encodeSnapshot(keys: MetaKeys, manifest: SnapshotSummary & { tree?: unknown }): Buffer {
  return sealManifest(keys, 'wedvault-snapshot-v1', snapshotKey(manifest.id), manifest);
}

export function decodeSnapshot(
  keys: MetaKeys,
  key: string,
  bytes: Buffer,
): SnapshotSummary & { tree?: unknown } {
  const bad = (why: string) => new CorruptionError(`${key}: ${why}`, { object: key });
  const manifest = openManifest(keys, 'wedvault-snapshot-v1', key, bytes) as SnapshotSummary & {
    tree?: unknown;
  };
  if (manifest.version !== 1) throw bad(`unknown snapshot version ${String(manifest.version)}`);
  if (snapshotKey(manifest.id) !== key) throw bad('names another snapshot id');
  return manifest;
}

/** Every ContentRef in a tree: any object with a scope, a blobs array and a size. */
export function* contentRefs(tree: unknown): Generator<ContentRef> {
  const stack: unknown[] = [tree];
  while (stack.length > 0) {
    const node = stack.pop();
    if (Array.isArray(node)) {
      for (const v of node) if (v !== null && typeof v === 'object') stack.push(v);
    } else if (node !== null && typeof node === 'object') {
      const o = node as Record<string, unknown>;
      if (typeof o.scope === 'string' && Array.isArray(o.blobs) && typeof o.size === 'number') {
        yield o as unknown as ContentRef;
        continue;
      }
      for (const v of Object.values(o)) if (v !== null && typeof v === 'object') stack.push(v);
    }
  }
}

/**
 * Every ContentRef of a tree, with those held by its record lists (a table's segments) read
 * through `reader`: the list's own reference comes first, then what its records name.
 */
export async function* allContentRefs(
  tree: unknown,
  reader: ContentReader,
  /** Consulted after a list's reference was yielded: false leaves the list unread. */
  expand: (list: ContentRef) => boolean = () => true,
): AsyncGenerator<ContentRef> {
  for await (const batch of contentRefBatches(tree, reader, expand)) yield* batch;
}

/**
 * allContentRefs in batches (a list's reference alone, then its records' references a read at a
 * time): a snapshot names a few hundred thousand references, and a generator step for each costs
 * more than the work done with it.
 */
async function* contentRefBatches(
  tree: unknown,
  reader: ContentReader,
  expand: (list: ContentRef) => boolean,
): AsyncGenerator<ContentRef[]> {
  for (const ref of contentRefs(tree)) {
    yield [ref];
    if (!ref.records || !expand(ref)) continue;
    for await (const records of readRecordBatches(reader, ref)) {
      let batch: ContentRef[] = [];
      for (const record of records) {
        for (const inner of contentRefs(record)) {
          if (!inner.records) {
            batch.push(inner);
            continue;
          }
          if (batch.length > 0) yield batch;
          batch = [];
          yield* contentRefBatches(inner, reader, expand);
        }
      }
      if (batch.length > 0) yield batch;
    }
  }
}

/**
 * The blob ids of every ContentRef of a tree, record lists included, in batches: what a
 * snapshot's object list needs. A list's records (a few hundred thousand segments in a snapshot of
 * every wedding) are scanned for their blob ids instead of parsed; a run of records the scan does
 * not read exactly is parsed and walked like the tree.
 */
export async function* blobIdBatches(tree: unknown, reader: ContentReader): AsyncGenerator<string[]> {
  for (const ref of contentRefs(tree)) {
    yield ref.blobs;
    if (!ref.records) continue;
    for await (const text of readLineRuns(reader, ref, 'latin1')) {
      const ids = scanBlobIds(text);
      if (ids) {
        yield ids;
        continue;
      }
      for (const record of Buffer.from(text, 'latin1').toString('utf8').split('\n')) {
        if (record) yield* blobIdBatches(parseRecord(ref, record), reader);
      }
    }
  }
}
