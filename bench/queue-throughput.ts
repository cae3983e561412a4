/**
 * BullMQ throughput on one Redis, with priorities (the tiers, 1–5, as the service gives every
 * job) beside the same jobs without: jobs/s enqueued (addBulk of 1,000) and completed by no-op
 * processors, sides alternating, medians of the rounds. Writes bench/results/queue-throughput.json.
 * `tsx bench/queue-throughput.ts` runs it alone; BENCH_QUEUE_JOBS (default 20,000) and
 * BENCH_QUEUE_ROUNDS (default 3) tune it.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createRedis, defaultJobOptions } from '../src/queues/connection.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const RESULTS = process.env.BENCH_RESULTS_DIR ?? path.join(ROOT, 'bench', 'results');
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const JOBS = Number(process.env.BENCH_QUEUE_JOBS ?? 20_000);
const ROUNDS = Number(process.env.BENCH_QUEUE_ROUNDS ?? 3);
const CONCURRENCY = 50;

interface Round {
  enqueue_per_s: number;
  complete_per_s: number;
}

async function round(prioritised: boolean): Promise<Round> {
  const prefix = `{wvbench-${randomBytes(4).toString('hex')}}`;
  const connection = createRedis(REDIS_URL);
  // the service's own job options: retries, completed jobs kept up to 10,000
  const queue = new Queue('backup', { connection, prefix, defaultJobOptions: defaultJobOptions() });
  const t0 = performance.now();
  for (let i = 0; i < JOBS; i += 1_000) {
    const n = Math.min(1_000, JOBS - i);
    await queue.addBulk(
      Array.from({ length: n }, (_, j) => ({
        name: 'backup',
        data: { weddingId: `w${i + j}`, type: 'files' },
        opts: prioritised ? { priority: 1 + ((i + j) % 5) } : {},
      })),
    );
  }
  const enqueueS = (performance.now() - t0) / 1000;
  let done = 0;
  const t1 = performance.now();
  const finished = new Promise<void>((resolve) => {
    const worker = new Worker('backup', async () => undefined, {
      connection: createRedis(REDIS_URL),
      prefix,
      concurrency: CONCURRENCY,
    });
    worker.on('completed', () => {
      if (++done === JOBS) worker.close().then(resolve, resolve);
    });
  });
  await finished;
  const completeS = (performance.now() - t1) / 1000;
  await queue.obliterate({ force: true });
  await queue.close();
  connection.disconnect();
  return { enqueue_per_s: Math.round(JOBS / enqueueS), complete_per_s: Math.round(JOBS / completeS) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export interface QueueThroughput {
  case: string;
  jobs: number;
  concurrency: number;
  with_priorities: Round;
  without_priorities: Round;
  runs: { with_priorities: Round[]; without_priorities: Round[] };
  goal: string;
  redis: string;
}

export async function benchQueueThroughput(): Promise<QueueThroughput> {
  const runs = { with_priorities: [] as Round[], without_priorities: [] as Round[] };
  for (let r = 0; r < ROUNDS; r++) {
    // alternate which side goes first, so drift on a shared machine does not favour one side
    const order = r % 2 === 0 ? [true, false] : [false, true];
    for (const p of order) (p ? runs.with_priorities : runs.without_priorities).push(await round(p));
  }
  const med = (rs: Round[]) => ({
    enqueue_per_s: median(rs.map((x) => x.enqueue_per_s)),
    complete_per_s: median(rs.map((x) => x.complete_per_s)),
  });
  const info = new Redis(REDIS_URL);
  const version = /redis_version:(\S+)/.exec(await info.info('server'))?.[1] ?? 'unknown';
  info.disconnect();
  const result: QueueThroughput = {
    case: 'queue-throughput',
    jobs: JOBS,
    concurrency: CONCURRENCY,
    with_priorities: med(runs.with_priorities),
    without_priorities: med(runs.without_priorities),
    runs,
    goal: '≥ 2,000 jobs/s enqueued and completed, with priorities',
    redis: version,
  };
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(path.join(RESULTS, 'queue-throughput.json'), JSON.stringify(result, null, 2) + '\n');
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchQueueThroughput();
  console.log(JSON.stringify({ with: r.with_priorities, without: r.without_priorities }));
}
