/**
 * Bringing a copy's change segments up to the primary's: the segments it lacks and the key bundles
 * their parts are sealed under (obeying the erasure ledger, as replication does).
 */
import { getBuffer, type Storage } from '../../storage/types.js';
import type { Repository } from '../repo/repository.js';
import { segmentsPrefix } from '../repo/segments.js';

async function keysOf(storage: Storage, prefix: string): Promise<Set<string>> {
  const out = new Set<string>();
  for await (const o of storage.list(prefix)) out.add(o.key);
  return out;
}

/** Copies what `copy` lacks; returns the objects copied. Keys first, so no segment names a key the copy lacks. */
export async function syncSegments(primary: Repository, copy: Storage, source: string): Promise<string[]> {
  const erased = await primary.erasedScopes();
  const copied: string[] = [];
  for (const prefix of ['keys/', segmentsPrefix(source)]) {
    const have = await keysOf(copy, prefix);
    for (const key of await keysOf(primary.storage, prefix)) {
      if (have.has(key)) continue;
      const bytes = primary.withoutErasedKeys(key, await getBuffer(primary.storage, key), erased);
      if (!bytes) continue;
      await copy.put(key, bytes, { size: bytes.length });
      copied.push(key);
    }
    await copy.sync?.();
  }
  return copied;
}
