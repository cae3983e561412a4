/**
 * The recovery points as the repositories hold them, for rebuilding a lost catalog: every snapshot
 * of any reachable copy described as the backup described it, and which copies hold all its objects.
 */
import { errorMessage } from '../errors.js';
import type { Storage } from '../storage/types.js';
import { objectsChecksum, schemaDigest, type BackupOutput } from './backup.js';
import { Repository } from './repo/repository.js';
import { snapshotTree } from './tree.js';

/** A point as the backup described it (its catalog record), with the copies that hold it. */
export interface RepoPoint extends Pick<
  BackupOutput,
  | 'snapshotId'
  | 'consistentTime'
  | 'lsn'
  | 'files'
  | 'stats'
  | 'objects'
  | 'checksum'
  | 'summary'
  | 'weddings'
> {
  type: string;
  time: string;
  operationId?: string | undefined;
  weddingId?: string | undefined;
  /** Copies holding every object the point needs. */
  complete: string[];
  /** Copies holding its snapshot with objects missing. */
  incomplete: string[];
}

/** Points of every copy that opens, oldest first; copies that cannot be read are named, not fatal. */
export async function readRepoPoints(
  copies: { target: string; storage: Storage }[],
  masterKey: Buffer,
): Promise<{ points: RepoPoint[]; unreadable: { target: string; error: string }[] }> {
  const points = new Map<string, RepoPoint>();
  const unreadable: { target: string; error: string }[] = [];
  for (const { target, storage } of copies) {
    try {
      const repo = await Repository.open(storage, masterKey);
      const held = new Map<string, number>();
      for await (const o of storage.list('')) held.set(o.key, o.size);
      for (const s of await repo.listSnapshots()) {
        let p = points.get(s.id);
        if (!p) {
          const snap = await repo.loadSnapshot(s.id);
          const tree = snapshotTree(snap.tree);
          const objects = await repo.objectsForSnapshot(s.id);
          p = {
            snapshotId: s.id,
            type: s.type,
            time: s.time,
            operationId: s.tags.operation,
            weddingId: s.tags.wedding,
            consistentTime: s.consistentPoint?.time ? new Date(s.consistentPoint.time) : undefined,
            lsn: s.consistentPoint?.lsn,
            files: Object.values(tree.files ?? {}).reduce((n, e) => n + e.length, 0),
            stats: s.stats,
            objects,
            checksum: objectsChecksum(objects),
            summary: {
              type: s.type,
              parent: s.parent ?? null,
              time: s.time,
              schemaDigest: schemaDigest(tree),
            },
            weddings: tree.postgres?.tenants.map((t) => t.id) ?? [],
            complete: [],
            incomplete: [],
          };
          points.set(s.id, p);
        }
        (p.objects.every((o) => held.has(o.key)) ? p.complete : p.incomplete).push(target);
      }
    } catch (err) {
      unreadable.push({ target, error: errorMessage(err) });
    }
  }
  return { points: [...points.values()].sort((a, b) => (a.time < b.time ? -1 : 1)), unreadable };
}
