// 10,000 weddings on real Redis and PostgreSQL with a controllable clock: 500 `week` weddings flood
// the backup queue (every planner tick is triggered twice over), no-op processors take a fixed number
// of jobs per simulated two hours, and every `later` wedding must still get its files backup within
// the later tier's RPO. Deduplication keeps the flood to one waiting job per wedding and type; without
// it the duplicates fill the capacity and `later` weddings starve. (Aging, which raises long-waiting
// jobs, belongs to the load manager and is not needed here.)
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker, type Job } from 'bullmq';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { closeCeremonyPools } from '../../src/engine/postgres/ceremony.js';
import { runCadenceTick } from '../../src/producers/cadence.js';
import { createRedis } from '../../src/queues/connection.js';
import { QUEUES } from '../../src/queues/names.js';
import { createWeddingsSource, insertPoints, type TestPoint } from '../helpers/cadence.js';
import { createTestService, type TestService } from '../helpers/service.js';
import { tempDirsForFile } from '../helpers/temp.js';

const tempDir = tempDirsForFile();
const HOUR = 3_600_000;
const T0 = new Date('2026-01-05T00:00:00Z');
const WEEK = 500;
const LATER = 9_500;
const STEP_H = 2;
const CAPACITY = 1_500; // jobs the no-op workers finish per simulated step
const LATER_RPO_MIN = 1_560;
let svc: TestService;

beforeAll(async () => {
  const dir = tempDir('wv-flood-');
  const config = path.join(dir, 'config.json');
  const tier = (filesEveryMinutes: number, rpoMinutes: number) => ({
    rpoMinutes,
    filesEveryMinutes,
    databaseEveryMinutes: filesEveryMinutes,
    databaseContinuous: true, // capture covers the database: only files backups are planned
  });
  writeFileSync(
    config,
    JSON.stringify({
      sources: { postgres: { pitr: { enabled: true } } },
      scheduling: {
        jobs: 'per-wedding',
        tiers: { week: tier(120, 180), later: tier(1_440, LATER_RPO_MIN) },
        seasons: { default: { months: [], factor: 1 } },
        peakWeekdays: { days: [], factor: 1 },
      },
    }),
  );
  svc = await createTestService({ WEDVAULT_CONFIG: config });
  const weddings = [
    ...Array.from({ length: WEEK }, (_, i) => ({ id: `week-${i}`, date: '2026-01-08' })),
    ...Array.from({ length: LATER }, (_, i) => ({ id: `later-${i}`, date: '2027-03-01' })),
  ];
  await createWeddingsSource(svc.config.sources.postgres.url, weddings);
  // later weddings were backed up at every hour of the last day: about 400 come due each hour
  await insertPoints(
    svc.ctx.db,
    Array.from({ length: LATER }, (_, i) => ({
      weddingId: `later-${i}`,
      type: 'files' as const,
      at: new Date(T0.getTime() - ((i % 24) + 0.5) * HOUR),
    })),
  );
}, 60_000);

afterAll(async () => {
  await closeCeremonyPools();
  await svc?.cleanup();
});

/** Takes up to `max` jobs in priority order and completes them; returns the backups they stand for. */
async function work(worker: Worker, max: number, at: Date): Promise<TestPoint[]> {
  const done: TestPoint[] = [];
  let left = max;
  const lane = async () => {
    const token = randomUUID();
    while (left > 0) {
      left--;
      const job = (await worker.getNextJob(token)) as Job | undefined;
      if (!job) return;
      await job.moveToCompleted({}, token, false);
      done.push({ weddingId: job.data.weddingId as string, type: 'files', at });
    }
  };
  await Promise.all(Array.from({ length: 16 }, lane));
  return done;
}

it('gets every later wedding its backup within its RPO under a flood of week jobs', async () => {
  const worker = new Worker(QUEUES.backup, null, {
    connection: createRedis(svc.config.redisUrl),
    prefix: svc.ctx.queues.prefix,
    autorun: false,
  });
  let worstLaterAgeMin = 0;
  let weekDone = 0;
  try {
    for (let step = 0; step <= LATER_RPO_MIN / 60 / STEP_H + 1; step++) {
      const now = new Date(T0.getTime() + step * STEP_H * HOUR);
      // a flood of triggers: each tick twice (deduplication must collapse the second)
      for (let i = 0; i < 2; i++) await runCadenceTick(svc.ctx, { clock: () => now });
      const done = await work(worker, CAPACITY, now);
      weekDone += done.filter((p) => p.weddingId!.startsWith('week-')).length;
      await insertPoints(svc.ctx.db, done);
      const { rows } = await svc.ctx.db.query<{ worst: number }>(
        `SELECT max(age)::float8 AS worst FROM (
           SELECT extract(epoch FROM $1::timestamptz - max(created_at)) / 60 AS age
             FROM recovery_points WHERE wedding_id LIKE 'later-%' GROUP BY wedding_id) a`,
        [now],
      );
      worstLaterAgeMin = Math.max(worstLaterAgeMin, rows[0]!.worst);
    }
  } finally {
    await worker.close();
  }
  expect(weekDone).toBeGreaterThanOrEqual(WEEK * 14); // the flood was served every step
  expect(worstLaterAgeMin).toBeLessThanOrEqual(LATER_RPO_MIN);
}, 120_000);
