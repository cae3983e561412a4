/** Records a CLI-made backup in the catalog, so the service lists it like any other recovery point. */
import type { Config } from '../config/index.js';
import { createPool, ensureDatabase } from '../catalog/db.js';
import { migrate } from '../catalog/migrate.js';
import { completeOperation, createOperation } from '../catalog/operations.js';
import { recordRecoveryPoint, upsertReplica } from '../catalog/recovery-points.js';
import type { BackupOutput } from '../engine/backup.js';
import { PRIORITY } from '../queues/priority.js';

export async function recordCliBackup(
  config: Config,
  operationId: string,
  type: 'full' | 'incremental' | 'files',
  out: BackupOutput,
): Promise<boolean> {
  await ensureDatabase(config.databaseUrl);
  const db = createPool(config.databaseUrl, 1);
  try {
    await migrate(db);
    await createOperation(db, { id: operationId, type, priority: PRIORITY.later, requestedBy: 'cli' });
    await recordRecoveryPoint(db, {
      id: out.snapshotId,
      operationId,
      type,
      weddingId: null,
      primaryTarget: config.primaryTarget,
      consistentTime: out.consistentTime ?? null,
      lsn: out.lsn ?? null,
      files: out.files,
      bytesRead: out.stats.bytesRead,
      bytesNew: out.stats.bytesNew,
      bytesStored: out.stats.bytesStored,
      objects: out.objects,
      checksum: out.checksum,
      summary: out.summary,
    });
    await upsertReplica(db, {
      recoveryPointId: out.snapshotId,
      target: config.primaryTarget,
      state: 'replicated',
      objects: out.objects.length,
      bytes: out.objects.reduce((s, o) => s + o.size, 0),
      checksum: out.checksum,
    });
    await completeOperation(db, operationId, {
      recoveryPointId: out.snapshotId,
      bytes: out.stats.bytesRead,
      followUps: [],
    });
    return true;
  } finally {
    await db.end();
  }
}
