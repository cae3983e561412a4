// Forget of database points on a real catalog and seeded source: a wedding hold keeps every point
// whose tree lists the wedding among its tenants, and its release lets the point go on both targets.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHold, releaseHold } from '../../src/catalog/holds.js';
import { createOperation } from '../../src/catalog/operations.js';
import { recordBackupOutput } from '../../src/catalog/record-backup.js';
import { runBackup } from '../../src/engine/backup.js';
import { replicateObjects } from '../../src/engine/replicate.js';
import { planForget, runForget } from '../../src/producers/retention.js';
import { PRIORITY } from '../../src/queues/priority.js';
import { seedDatabase } from '../../src/seed/database.js';
import { createTestService, type TestService } from '../helpers/service.js';
import { tempDirsForFile } from '../helpers/temp.js';

const tempDir = tempDirsForFile();
let svc: TestService;
let wedding: string;
const points: string[] = [];

async function databasePoint(): Promise<string> {
  const { config, ctx } = svc;
  const operationId = randomUUID();
  const out = await runBackup({
    storage: ctx.storage('local-primary'),
    masterKey: config.masterKey,
    type: 'full',
    components: ['database'],
    operationId,
    sources: config.sources,
  });
  await createOperation(ctx.db, {
    id: operationId,
    type: 'full',
    priority: PRIORITY.later,
    components: ['database'],
  });
  await recordBackupOutput(ctx.db, out, {
    operationId,
    type: 'full',
    weddingId: null,
    primaryTarget: 'local-primary',
  });
  await replicateObjects(ctx.storage('local-primary'), ctx.storage('local-secondary'), out.objects);
  return out.snapshotId;
}

const exists = (target: string, id: string) =>
  svc.ctx
    .storage(target)
    .stat(`snapshots/${id}`)
    .then(() => true)
    .catch(() => false);

beforeAll(async () => {
  const dir = tempDir('wv-retention-db-');
  writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify({ retention: { database: { full: { keepLast: 1 } } } }),
  );
  svc = await createTestService({ WEDVAULT_CONFIG: path.join(dir, 'config.json') });
  await seedDatabase(svc.config.sources.postgres.url, { scale: 0.002 });
  const c = new pg.Client({ connectionString: svc.config.sources.postgres.url });
  await c.connect();
  wedding = String((await c.query('SELECT max(wedding_id) AS id FROM weddings')).rows[0].id);
  await c.end();
  points.push(await databasePoint(), await databasePoint());
}, 180_000);

afterAll(async () => {
  await svc?.cleanup();
});

describe('forget of database points', () => {
  it('a wedding hold keeps the older point, whose tree lists the wedding', async () => {
    const hold = await createHold(svc.ctx.db, { weddingId: wedding, reason: 'chargeback dispute' });
    const plan = await planForget(svc.ctx);
    expect(plan.map((v) => [v.id, v.action, v.reasons])).toEqual([
      [points[1], 'keep', ['database/full: last']],
      [points[0], 'keep', [`held by hold ${hold.id} (wedding ${wedding}): chargeback dispute`]],
    ]);
    expect((await runForget(svc.ctx)).forgotten).toEqual([]);
    expect(await exists('local-secondary', points[0]!)).toBe(true);

    await releaseHold(svc.ctx.db, hold.id);
    expect((await runForget(svc.ctx)).forgotten).toEqual([points[0]]);
    for (const target of ['local-primary', 'local-secondary']) {
      expect(await exists(target, points[0]!)).toBe(false);
      expect(await exists(target, points[1]!)).toBe(true);
    }
  }, 60_000);

  it('a hold on a wedding no point holds keeps nothing extra', async () => {
    const more = await databasePoint();
    await createHold(svc.ctx.db, { weddingId: 'no-such-wedding', reason: 'x' });
    expect((await runForget(svc.ctx)).forgotten).toEqual([points[1]]);
    expect(await exists('local-primary', more)).toBe(true);
  }, 60_000);
});
