/**
 * Forgetting a recovery point in the repository: its snapshot manifest goes from every copy, and
 * the weddings a point holds are read from its tree (a wedding hold keeps every such point).
 * Blobs stay until a prune finds nothing references them.
 */
import { errorMessage } from '../errors.js';
import { tenantOfScope } from './api.js';
import type { Storage } from '../storage/types.js';
import { Repository } from './repo/repository.js';
import { snapshotKey } from './repo/snapshot.js';
import { snapshotTree } from './tree.js';

export interface Copy {
  target: string;
  storage: Storage;
}

export interface SnapshotRemoval {
  target: string;
  /** Why this copy still has the snapshot; absent when it is gone (or never was there). */
  error?: string;
}

/**
 * Deletes the point's snapshot on every copy, whichever fail: a snapshot named by no manifest
 * cannot be restored, listed or picked as a parent, and deleting an absent object is no error,
 * so running this again finishes what a failed run left.
 */
export async function removeSnapshot(
  copies: readonly Copy[],
  snapshotId: string,
): Promise<SnapshotRemoval[]> {
  return Promise.all(
    copies.map(async ({ target, storage }) => {
      try {
        await storage.delete(snapshotKey(snapshotId));
        await storage.sync?.();
        return { target };
      } catch (err) {
        return { target, error: errorMessage(err) };
      }
    }),
  );
}

const WEDDING_SCOPE = /^wedding:(.+)$/;

/** The weddings a snapshot holds: its database tenants and the wedding scopes of its files. */
export async function snapshotWeddings(repo: Repository, snapshotId: string): Promise<string[]> {
  const tree = snapshotTree((await repo.loadSnapshot(snapshotId)).tree);
  const weddings = new Set(tree.postgres?.tenants.map((t) => t.id) ?? []);
  for (const entries of Object.values(tree.files ?? {})) {
    for (const e of entries) {
      // a class scope (`wedding:42/media`) is its wedding's too
      const m = e.ref && WEDDING_SCOPE.exec(tenantOfScope(e.ref.scope));
      if (m) weddings.add(m[1]!);
    }
  }
  return [...weddings];
}

/** The weddings of each point, read from the first copy that opens; undefined where none could be read. */
export async function weddingsOfPoints(
  copies: readonly Copy[],
  masterKey: Buffer,
  snapshotIds: readonly string[],
): Promise<Map<string, string[] | undefined>> {
  const out = new Map<string, string[] | undefined>(snapshotIds.map((id) => [id, undefined]));
  for (const { storage } of copies) {
    const missing = [...out].filter(([, w]) => w === undefined).map(([id]) => id);
    if (missing.length === 0) break;
    const repo = await Repository.open(storage, masterKey).catch(() => undefined);
    if (!repo) continue;
    for (const id of missing) {
      out.set(id, await snapshotWeddings(repo, id).catch(() => undefined));
    }
  }
  return out;
}

/**
 * Change segments no base point needs any more go with the points: on each copy, those ending
 * before the oldest database point's consistent point (from the copy's own snapshots). Nothing goes
 * while a copy has no base point, or when it cannot be opened (its error is returned).
 */
export async function dropOldSegments(
  copies: readonly Copy[],
  masterKey: Buffer,
  source: string,
): Promise<{ target: string; dropped: number; error?: string }[]> {
  const { basePoints } = await import('./pitr/base.js');
  return Promise.all(
    copies.map(async ({ target, storage }) => {
      try {
        const repo = await Repository.open(storage, masterKey);
        const oldest = (await basePoints(repo))[0];
        if (!oldest) return { target, dropped: 0 };
        return { target, dropped: (await repo.dropSegmentsBefore(source, oldest.lsn)).length };
      } catch (err) {
        return { target, dropped: 0, error: errorMessage(err) };
      }
    }),
  );
}
