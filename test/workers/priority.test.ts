import pg from 'pg';
import type { Worker } from 'bullmq';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDatabase } from '../../src/catalog/db.js';
import { requestBackup } from '../../src/producers/backups.js';
import { closeCeremonyPools } from '../../src/engine/postgres/ceremony.js';
import { PRIORITY } from '../../src/queues/priority.js';
import { startWorkers, stopWorkers } from '../../src/workers/run.js';
import { createTestService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
let workers: Worker[] = [];

beforeAll(async () => {
  svc = await createTestService();
  const url = svc.config.sources.postgres.url;
  await ensureDatabase(url);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`CREATE TABLE weddings (wedding_id text PRIMARY KEY, wedding_date date NOT NULL)`);
  await c.query(
    `INSERT INTO weddings SELECT 'far' || i, current_date + 365 + i FROM generate_series(1, 10) i
     UNION ALL SELECT 'near', current_date + 5`,
  );
  await c.end();
});

afterAll(async () => {
  await stopWorkers(workers);
  await closeCeremonyPools();
  await svc?.cleanup();
});

it('runs a backup for a wedding 5 days away before ten for weddings a year away', async () => {
  const far = [];
  for (let i = 1; i <= 10; i++)
    far.push(await requestBackup(svc.ctx, { type: 'files', weddingId: `far${i}` }));
  const near = await requestBackup(svc.ctx, { type: 'files', weddingId: 'near' });
  expect(near.priority).toBe(PRIORITY.week);
  expect(near.ceremonyDate).toBeTruthy();
  expect(far.every((f) => f.priority === PRIORITY.later)).toBe(true);

  workers = startWorkers(svc.ctx, { queues: ['backup'], concurrency: 1 });
  const ids = [near, ...far].map((x) => x.operationId);
  const rows = await waitFor(async () => {
    const { rows } = await svc.ctx.db.query(
      `SELECT id, state, started_at FROM backup_operations WHERE id = ANY($1) ORDER BY started_at`,
      [ids],
    );
    return rows.every((r) => r.state === 'completed') && rows;
  }, 60_000);
  expect(rows[0].id).toBe(near.operationId);
});
