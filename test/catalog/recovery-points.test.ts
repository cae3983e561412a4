import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPool } from '../../src/catalog/db.js';
import { migrate } from '../../src/catalog/migrate.js';
import { listReplicas, recordRecoveryPoint, upsertReplica } from '../../src/catalog/recovery-points.js';
import { createTempDatabase, type TempDatabase } from '../helpers/pg.js';

let db: TempDatabase;
beforeAll(async () => {
  db = await createTempDatabase('catalog_points');
});
afterAll(() => db.drop());

it('records recovery points and replicas of more than 2 GiB', async () => {
  const pool = createPool(db.url, 2, () => undefined);
  try {
    await migrate(pool);
    const big = 3_249_778_078;
    await recordRecoveryPoint(pool, {
      id: 'a'.repeat(32),
      operationId: null,
      type: 'files',
      weddingId: null,
      primaryTarget: 'local-primary',
      consistentTime: null,
      lsn: null,
      files: 12,
      bytesRead: big,
      bytesNew: big,
      bytesStored: big,
      objects: [{ key: 'data/ab/x', size: big }],
      checksum: 'c',
      summary: {},
    });
    await upsertReplica(pool, {
      recoveryPointId: 'a'.repeat(32),
      target: 'local-primary',
      state: 'replicated',
      objects: 1,
      bytes: big,
    });
    await upsertReplica(pool, {
      recoveryPointId: 'a'.repeat(32),
      target: 'local-primary',
      state: 'verified',
      copiedBytes: big * 2,
    });
    const [r] = await listReplicas(pool, ['a'.repeat(32)]);
    expect(r).toMatchObject({ state: 'verified', objects: 1, bytes: big, copiedBytes: big * 2 });
  } finally {
    await pool.end();
  }
});
