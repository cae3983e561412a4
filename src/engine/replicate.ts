/** Copies to a destination store exactly the objects it lacks; content addressing makes this idempotent. */
import pLimit from 'p-limit';
import { getBuffer, type ObjectInfo, type Storage } from '../storage/types.js';
import { SCOPE_BUNDLES_PREFIX, SCOPE_KEYS_PREFIX } from './repo/keys.js';
import { LEDGER_PREFIX } from './repo/ledger.js';
import { CHANGES_PREFIX } from './repo/segments.js';
import { Repository } from './repo/repository.js';

export interface ReplicateOptions {
  /**
   * Rewrites a key object before it is copied (the erasure ledger: an erased scope's key sets are
   * never copied back to a copy that destroyed them); null skips it.
   */
  keyObject?: ((key: string, bytes: Buffer) => Buffer | null) | undefined;
  concurrency?: number;
  onProgress?: (copied: { objects: number; bytes: number }) => void;
  signal?: AbortSignal;
}

export interface ReplicateResult {
  objects: number;
  bytes: number;
  copiedObjects: number;
  copiedBytes: number;
  /** Objects already present with the right size: not sent again. */
  skippedObjects: number;
}

/** Snapshots go last so a destination never names what it does not hold yet (segments after their keys). */
function copyOrder(key: string): number {
  if (key.startsWith('snapshots/')) return 2;
  if (key.startsWith('index/') || key.startsWith(CHANGES_PREFIX)) return 1;
  return 0;
}

export async function replicateObjects(
  source: Storage,
  dest: Storage,
  objects: { key: string; size: number }[],
  opts: ReplicateOptions = {},
): Promise<ReplicateResult> {
  // One list pass over the destination decides what is missing.
  const present = new Map<string, ObjectInfo>();
  const prefixes = new Set(objects.map((o) => o.key.split('/')[0] + '/'));
  for (const p of prefixes) for await (const o of dest.list(p)) present.set(o.key, o);
  for (const o of objects) {
    if (!o.key.includes('/') && !present.has(o.key)) {
      try {
        present.set(o.key, await dest.stat(o.key));
      } catch {
        /* missing: it will be copied */
      }
    }
  }

  const missing = objects.filter((o) => present.get(o.key)?.size !== o.size);
  const result: ReplicateResult = {
    objects: objects.length,
    bytes: objects.reduce((s, o) => s + o.size, 0),
    copiedObjects: 0,
    copiedBytes: 0,
    skippedObjects: objects.length - missing.length,
  };
  const limit = pLimit(opts.concurrency ?? 4);
  for (const phase of [0, 1, 2]) {
    // a local destination syncs packs before the indexes naming them, those before the snapshots
    if (phase > 0) await dest.sync?.();
    await Promise.all(
      missing
        .filter((o) => copyOrder(o.key) === phase)
        .map((o) =>
          limit(async () => {
            opts.signal?.throwIfAborted();
            if (opts.keyObject && o.key.startsWith('keys/')) {
              const bytes = opts.keyObject(o.key, await getBuffer(source, o.key));
              if (bytes) await dest.put(o.key, bytes, { size: bytes.length });
            } else {
              const body = await source.get(o.key);
              await dest.put(o.key, body, { size: o.size });
            }
            result.copiedObjects++;
            result.copiedBytes += o.size;
            opts.onProgress?.({ objects: result.copiedObjects, bytes: result.copiedBytes });
          }),
        ),
    );
  }
  await dest.sync?.();
  return result;
}

/**
 * What a copy must obey of the erasure ledgers: the source's ledger entries go along (a copy knows
 * what was erased even if its own erasure has not run yet), and key bundles lose the key sets of a
 * scope either copy erased, so a copy whose erasure ran first never gets the keys back from one
 * whose erasure has not.
 */
export async function ledgerOf(
  masterKey: Buffer,
  source: Storage,
  dest: Storage,
): Promise<{
  objects: { key: string; size: number }[];
  keyObject?: (key: string, bytes: Buffer) => Buffer | null;
}> {
  const objects: { key: string; size: number }[] = [];
  for await (const o of source.list(LEDGER_PREFIX)) objects.push({ key: o.key, size: o.size });
  const from = await Repository.open(source, masterKey).catch(() => undefined);
  if (!from) return { objects };
  const to = await Repository.open(dest, masterKey).catch(() => undefined);
  const erased = new Set([...(await from.erasedScopes()), ...(to ? await to.erasedScopes() : [])]);
  if (erased.size === 0) return { objects };
  return { objects, keyObject: (key, bytes) => from.withoutErasedKeys(key, bytes, erased) };
}

/**
 * Change segments (continuous capture) and the scope-key objects their parts are sealed under: any
 * replication carries the segments a copy lacks (the capture writes each copy too; this catches a
 * copy that was down). Nothing when the source holds no segments.
 */
export async function changeObjects(source: Storage): Promise<{ key: string; size: number }[]> {
  const out: { key: string; size: number }[] = [];
  for await (const o of source.list(CHANGES_PREFIX)) out.push({ key: o.key, size: o.size });
  if (out.length === 0) return out;
  for (const prefix of [SCOPE_KEYS_PREFIX, SCOPE_BUNDLES_PREFIX]) {
    for await (const o of source.list(prefix)) out.push({ key: o.key, size: o.size });
  }
  return out;
}
