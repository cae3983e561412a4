import pg from 'pg';
import type { Worker } from 'bullmq';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDatabase } from '../../src/catalog/db.js';
import { requestBackup, type EnqueuedBackup } from '../../src/producers/backups.js';
import { closeCeremonyPools } from '../../src/engine/postgres/ceremony.js';
import { PRIORITY } from '../../src/queues/priority.js';
import { startWorkers, stopWorkers } from '../../src/workers/run.js';
import { createTestService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
let workers: Worker[] = [];

beforeAll(async () => {
  svc = await createTestService({ WEDVAULT_WEDDING_TIMEZONE: 'weddings.time_zone' });
  const url = svc.config.sources.postgres.url;
  await ensureDatabase(url);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(
    `CREATE TABLE weddings (wedding_id text PRIMARY KEY, wedding_date date NOT NULL, time_zone text)`,
  );
  await c.query(
    `INSERT INTO weddings (wedding_id, wedding_date) SELECT 'far' || i, current_date + 365 + i FROM generate_series(1, 5) i
     UNION ALL SELECT 'near', current_date + 5
     UNION ALL SELECT 'month', current_date + 20
     UNION ALL SELECT 'quarter', current_date + 60`,
  );
  await c.query(
    `INSERT INTO weddings VALUES ('auckland', '2026-06-09', 'Pacific/Auckland'), ('utc', '2026-06-09', NULL),
       ('unknown-zone', '2026-06-09', 'Mars/Olympus_Mons'), ('los-angeles', '2026-06-09', 'America/Los_Angeles')`,
  );
  await c.end();
});

afterAll(async () => {
  await stopWorkers(workers);
  await closeCeremonyPools();
  await svc?.cleanup();
});

it('runs jobs by tier, nearest wedding first, first come first served within a tier', async () => {
  // The near wedding is asked for in the middle, so neither first-in nor last-in order can pass.
  const asked = ['far1', 'far2', 'quarter', 'far3', 'near', 'month', 'far4', 'far5'];
  const jobs = new Map<string, EnqueuedBackup>();
  for (const weddingId of asked)
    jobs.set(weddingId, await requestBackup(svc.ctx, { type: 'files', weddingId }));
  const tier = (id: string) => jobs.get(id)!.priority;
  expect(asked.map(tier)).toEqual([
    PRIORITY.later,
    PRIORITY.later,
    PRIORITY.quarter,
    PRIORITY.later,
    PRIORITY.week,
    PRIORITY.month,
    PRIORITY.later,
    PRIORITY.later,
  ]);
  expect(jobs.get('near')!.ceremonyDate).toBeTruthy();

  workers = startWorkers(svc.ctx, { queues: ['backup'], concurrency: 1 });
  const ids = asked.map((w) => jobs.get(w)!.operationId);
  const rows = await waitFor(async () => {
    const { rows } = await svc.ctx.db.query<{ id: string; state: string; wedding_id: string }>(
      `SELECT id, state, wedding_id FROM backup_operations WHERE id = ANY($1) ORDER BY started_at, id`,
      [ids],
    );
    return rows.length === ids.length && rows.every((r) => r.state === 'completed') && rows;
  }, 90_000);
  expect(rows.map((r) => r.wedding_id)).toEqual([
    'near',
    'month',
    'quarter',
    'far1',
    'far2',
    'far3',
    'far4',
    'far5',
  ]);
});

it("counts a wedding's days in its own time zone, read from the configured column", async () => {
  // 23:30 UTC on 1 June is already 2 June in Auckland: 7 days to the 9th there, 8 in UTC and Los Angeles.
  const late = new Date('2026-06-01T23:30:00Z');
  const priorityOf = async (weddingId: string) =>
    (await requestBackup(svc.ctx, { type: 'files', weddingId }, {}, late)).priority;
  expect(await priorityOf('auckland')).toBe(PRIORITY.week);
  expect(await priorityOf('utc')).toBe(PRIORITY.month);
  expect(await priorityOf('los-angeles')).toBe(PRIORITY.month);
  // A zone the runtime does not know falls back to UTC instead of failing the request.
  expect(await priorityOf('unknown-zone')).toBe(PRIORITY.month);
});
