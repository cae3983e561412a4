/** Records a CLI-made backup in the catalog, so the service lists it like any other recovery point. */
import type { Config } from '../config/index.js';
import { createPool, ensureDatabase } from '../catalog/db.js';
import { migrate } from '../catalog/migrate.js';
import { completeOperation, createOperation } from '../catalog/operations.js';
import { recordBackupOutput } from '../catalog/record-backup.js';
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
    await recordBackupOutput(db, out, {
      operationId,
      type,
      weddingId: null,
      primaryTarget: config.primaryTarget,
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
