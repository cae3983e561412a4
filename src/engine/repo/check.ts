/** Verifies a whole repository and reports every problem found as {object, kind, detail}, never stopping at the first. */
import { CorruptionError, NotFoundError, errorMessage } from '../../errors.js';
import { getBuffer } from '../../storage/types.js';
import { decodeBlob, type BlobEntry } from './blob.js';
import { decodeIndex, INDEX_PREFIX } from './index.js';
import { inlineFault } from './inline.js';
import { openBundle, SCOPE_BUNDLES_PREFIX, SCOPE_KEYS_PREFIX } from './keys.js';
import { checkHeaderAgainstIndex, DATA_PREFIX, packKey, readPackHeader, verifyPackBytes } from './pack.js';
import { RepoReader } from './reader.js';
import { allContentRefs, SNAPSHOTS_PREFIX, type Snapshot } from './snapshot.js';
import type { RepoContext } from './writer.js';

/** quick: structure (indexes, pack headers, snapshots, keys); full: also every pack whole and every blob. */
export type CheckMode = 'quick' | 'full';

export interface CheckOptions {
  /** Default quick. */
  mode?: CheckMode;
}

export interface Problem {
  object: string;
  kind: 'missing' | 'corrupt' | 'size' | 'erased';
  detail?: string;
}

type CheckContext = RepoContext & { loadSnapshot(id: string): Promise<Snapshot> };

async function listKeys(ctx: CheckContext, prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const o of ctx.storage.list(prefix)) out.set(o.key, o.size);
  return out;
}

export async function checkRepository(ctx: CheckContext, opts: CheckOptions = {}): Promise<Problem[]> {
  const full = opts.mode === 'full';
  const problems: Problem[] = [];
  const report = (object: string, err: unknown) => {
    if (err instanceof CorruptionError)
      problems.push({ object: err.object ?? object, kind: 'corrupt', detail: err.message });
    else if (err instanceof NotFoundError) problems.push({ object, kind: 'missing', detail: err.message });
    else throw err;
  };

  for (const key of (await listKeys(ctx, SCOPE_KEYS_PREFIX)).keys()) {
    const [hash, keyId] = key.slice(SCOPE_KEYS_PREFIX.length).split('/');
    await ctx.scopes.byRef(hash ?? '', keyId ?? '').catch((err: unknown) => report(key, err));
  }
  for (const key of (await listKeys(ctx, SCOPE_BUNDLES_PREFIX)).keys()) {
    try {
      openBundle(ctx.meta, key, await getBuffer(ctx.storage, key));
    } catch (err) {
      report(key, err);
    }
  }

  // Indexes are read afresh, not from the writer's cache: check trusts nothing it did not read now.
  const entries = new Map<string, BlobEntry>();
  const packEntries = new Map<string, BlobEntry[]>();
  for (const key of (await listKeys(ctx, INDEX_PREFIX)).keys()) {
    try {
      for (const pack of decodeIndex(ctx.meta.meta, key, await getBuffer(ctx.storage, key))) {
        packEntries.set(pack.id, pack.blobs);
        for (const b of pack.blobs) entries.set(b.id, b);
      }
    } catch (err) {
      report(key, err);
    }
  }

  const packs = await listKeys(ctx, DATA_PREFIX);
  for (const [packId, indexed] of packEntries) {
    const key = packKey(packId);
    const size = packs.get(key);
    if (size === undefined) {
      problems.push({ object: key, kind: 'missing', detail: `listed by the index, ${indexed.length} blobs` });
      continue;
    }
    try {
      const bytes = full ? await getBuffer(ctx.storage, key) : undefined;
      const header = bytes
        ? verifyPackBytes(ctx.meta.meta, key, bytes)
        : await readPackHeader(ctx.storage, ctx.meta.meta, key, size);
      checkHeaderAgainstIndex(key, header, indexed);
      if (bytes) await checkBlobs(ctx, key, header, bytes, problems);
    } catch (err) {
      report(key, err);
    }
  }

  for (const key of (await listKeys(ctx, SNAPSHOTS_PREFIX)).keys()) {
    try {
      const snap = await ctx.loadSnapshot(key.slice(SNAPSHOTS_PREFIX.length));
      const reader = new RepoReader(ctx);
      // a record list is read only once its own blobs are known to be indexed
      for await (const ref of allContentRefs(snap.tree, reader)) {
        // inline content is opened like a blob; its bytes are in a record list of this snapshot
        const fault = full && ref.inline !== undefined && (await inlineFault(reader, ref));
        if (fault) problems.push({ object: key, kind: 'corrupt', detail: fault });
        const lost = ref.blobs.filter((b) => !entries.has(b));
        if (lost.length > 0) {
          problems.push({
            object: key,
            kind: 'missing',
            detail: `${lost.length} blobs in no index, e.g. ${lost[0]}`,
          });
          break;
        }
      }
    } catch (err) {
      report(key, err);
    }
  }
  return problems;
}

async function checkBlobs(
  ctx: CheckContext,
  key: string,
  header: BlobEntry[],
  bytes: Buffer,
  problems: Problem[],
): Promise<void> {
  for (const e of header) {
    let keys;
    try {
      keys = await ctx.scopes.byRef(e.scopeHash, e.keyId);
    } catch (err) {
      // An erased scope's blobs are unreadable by design until prune removes them.
      if (err instanceof NotFoundError) continue;
      throw err;
    }
    try {
      decodeBlob(keys, e, bytes.subarray(e.offset, e.offset + e.length), key);
    } catch (err) {
      problems.push({ object: key, kind: 'corrupt', detail: errorMessage(err) });
      return;
    }
  }
}
