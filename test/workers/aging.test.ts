// No starvation under a flood: 10,000 `week` jobs waiting, and more keep arriving faster than the worker drains them, yet
// every `later` job completes within its bound, because the sweep promotes it once it is overdue.
// A controllable clock runs 60 times real time (1 s = 1 min), so a 2-minute bound takes 2 s.
import { randomBytes } from 'node:crypto';
import { Queue, Worker, type JobsOptions } from 'bullmq';
import { afterAll, expect, it } from 'vitest';
import { PRIORITY } from '../../src/queues/priority.js';
import { createRedis } from '../../src/queues/connection.js';
import { sweepAging } from '../../src/workers/aging.js';
import { clearRedisPrefix, REDIS_URL, waitFor } from '../helpers/service.js';

const redisPrefix = `wvtest-aging-${randomBytes(4).toString('hex')}`;
const prefix = `{${redisPrefix}}`;
const redis = createRedis(REDIS_URL);
const queue = new Queue('backup', { connection: redis, prefix });
let worker: Worker | undefined;

afterAll(async () => {
  await worker?.close();
  await queue.close();
  redis.disconnect();
  await clearRedisPrefix(redisPrefix);
});

const SPEED = 60;
const MIN = 60_000;
const start = Date.now();
const clock = () => start + (Date.now() - start) * SPEED;
const bounds = {
  week: 15 * MIN,
  month: 60 * MIN,
  quarter: 240 * MIN,
  later: 2 * MIN,
  after: 60 * MIN,
  maintenance: 60 * MIN,
};

const week = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    name: 'backup',
    data: { weddingId: `w${i}` },
    opts: { priority: PRIORITY.week, timestamp: clock() } satisfies JobsOptions,
  }));

it('every `later` job completes within its bound under a flood of `week` jobs', async () => {
  for (let i = 0; i < 10; i++) await queue.addBulk(week(1_000)); // 10,000 weddings' backups
  const later = Array.from({ length: 20 }, (_, i) => `later-${i}`);
  const addLater = (ids: string[]) =>
    queue.addBulk(
      ids.map((id) => ({
        name: 'backup',
        data: {},
        opts: { jobId: id, priority: PRIORITY.later, timestamp: clock() },
      })),
    );
  await addLater(later.slice(0, 10));

  const waited = new Map<string, number>();
  // a no-op processor held to 300 jobs/s, while the flood brings 500/s
  worker = new Worker('backup', async () => undefined, {
    connection: createRedis(REDIS_URL),
    prefix,
    concurrency: 4,
    limiter: { max: 60, duration: 200 },
  });
  worker.on('completed', (job) => {
    if (job.id?.startsWith('later-')) waited.set(job.id, clock() - job.timestamp);
  });
  let flooding = true;
  let secondBatch = false;
  const flood = (async () => {
    while (flooding) {
      await queue.addBulk(week(100));
      if (!secondBatch && clock() - start > 1.5 * MIN) {
        secondBatch = true;
        await addLater(later.slice(10));
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const sweeps = (async () => {
    while (flooding) {
      await sweepAging(queue, redis, clock(), bounds);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  try {
    await waitFor(async () => waited.size === later.length, 15_000);
  } finally {
    flooding = false;
    await Promise.all([flood, sweeps]);
  }
  // the bound, plus one clock minute (one real second: a sweep period, a sweep over ~11,000 jobs
  // on a shared machine, and the worker's next pick)
  for (const ms of waited.values()) expect(ms).toBeLessThanOrEqual(bounds.later + MIN);
  // the flood is still there: week jobs are waiting, the later ones did not get in by an empty queue
  expect(await queue.getPrioritizedCount()).toBeGreaterThan(8_000);
}, 40_000);
