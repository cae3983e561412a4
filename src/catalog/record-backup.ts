/** Records what a backup run produced: its recovery point and the primary target's copy of it. */
import type { Db } from './db.js';
import {
  recordPointWeddings,
  recordRecoveryPoint,
  upsertReplica,
  type RecoveryPoint,
} from './recovery-points.js';

/** What the catalog keeps of a backup run: the engine's output has this shape (the catalog does not import it). */
export interface BackupRecord {
  snapshotId: string;
  consistentTime?: Date | undefined;
  lsn?: string | undefined;
  files: number;
  stats: { bytesRead: number; bytesNew: number; bytesStored: number };
  objects: { key: string; size: number }[];
  checksum: string;
  summary: Record<string, unknown>;
  weddings: string[];
}

type PointMeta = {
  operationId: string | null;
  type: string;
  weddingId: string | null;
  primaryTarget: string;
};

/** The recovery point row of a backup's record (also what a catalog rebuild reads back: rebuild.ts). */
export function pointRow(out: BackupRecord, meta: PointMeta): Omit<RecoveryPoint, 'createdAt' | 'healthy'> {
  return {
    id: out.snapshotId,
    ...meta,
    consistentTime: out.consistentTime ?? null,
    lsn: out.lsn ?? null,
    files: out.files,
    bytesRead: out.stats.bytesRead,
    bytesNew: out.stats.bytesNew,
    bytesStored: out.stats.bytesStored,
    objects: out.objects,
    checksum: out.checksum,
    summary: out.summary,
  };
}

export async function recordBackupOutput(
  db: Db,
  out: BackupRecord,
  meta: PointMeta & { operationId: string },
): Promise<RecoveryPoint> {
  const point = await recordRecoveryPoint(db, pointRow(out, meta));
  await recordPointWeddings(db, point.id, out.weddings);
  await upsertReplica(db, {
    recoveryPointId: point.id,
    target: meta.primaryTarget,
    state: 'replicated',
    objects: out.objects.length,
    bytes: out.objects.reduce((s, o) => s + o.size, 0),
    checksum: out.checksum,
  });
  return point;
}
