/**
 * Planning a day for many weddings (default 100,000; `--weddings N`): the cadence planner's first tick
 * (every wedding due: plan + enqueue, the worst case), a steady tick (everything already waiting, so
 * every add collapses), and the one-day preview; wall time and the Redis memory the queued jobs take.
 * Writes bench/results/schedule-plan.json. Run alone: `npx tsx bench/schedule-plan.ts`.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { loadConfig } from '../src/config/index.js';
import { createContext } from '../src/context.js';
import { closeCeremonyPools } from '../src/engine/postgres/ceremony.js';
import { createLogger } from '../src/log.js';
import { runCadenceTick } from '../src/producers/cadence.js';
import { previewSchedules } from '../src/producers/protection.js';
import { QUEUES } from '../src/queues/names.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const dbUrl = (name: string) => ADMIN_URL.replace(/\/[^/]*$/, `/${name}`);
const ZONES = [
  'UTC',
  'Europe/London',
  'Europe/Rome',
  'America/New_York',
  'America/Los_Angeles',
  'Australia/Sydney',
  'Asia/Tokyo',
  'Pacific/Auckland',
];
const REGIONS = ['north', 'south', 'default'];

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

async function usedMemory(redis: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
}

export interface SchedulePlanFigures {
  case: string;
  weddings: number;
  first_tick: { wall_s: number; due: number; redis_bytes: number; redis_bytes_per_job: number };
  steady_tick: { wall_s: number; due: number; redis_bytes_added: number };
  preview_day: { wall_s: number; backups_planned: number };
  note: string;
}

export async function benchSchedulePlan(weddings: number): Promise<SchedulePlanFigures> {
  const id = randomBytes(4).toString('hex');
  const source = `wv_bench_sched_source_${id}`;
  const catalog = `wv_bench_sched_catalog_${id}`;
  const dir = path.join(tmpdir(), `wv-bench-sched-${id}`);
  mkdirSync(dir, { recursive: true });
  const configFile = path.join(dir, 'config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      sources: { postgres: { weddingRegion: 'weddings.region' } },
      scheduling: {
        seasons: {
          default: { months: [5, 6, 7, 8, 9], factor: 2 },
          south: { months: [11, 12, 1, 2], factor: 2 },
          north: { months: [6, 7], factor: 3 },
        },
      },
    }),
  );
  await admin(`CREATE DATABASE ${source}`);
  const s = new pg.Client({ connectionString: dbUrl(source) });
  await s.connect();
  // ceremonies spread from 20 days ago to two years ahead, over eight zones and three regions
  await s.query(`CREATE TABLE weddings (id text PRIMARY KEY, wedding_date date, tz text, region text)`);
  await s.query(
    `INSERT INTO weddings SELECT 'w' || g, current_date + (g % 720) - 20, ($2::text[])[1 + g % 8], ($3::text[])[1 + g % 3]
       FROM generate_series(1, $1) g`,
    [weddings, ZONES, REGIONS],
  );
  await s.end();
  const prefix = `wvbench-sched-${id}`;
  const config = loadConfig({
    ...process.env,
    DATABASE_URL: dbUrl(catalog),
    SOURCE_DATABASE_URL: dbUrl(source),
    REDIS_URL,
    WEDVAULT_REDIS_PREFIX: prefix,
    WEDVAULT_CONFIG: configFile,
    WEDVAULT_WEDDING_TIMEZONE: 'weddings.tz',
    WEDVAULT_DATA_DIR: path.join(dir, 'data'),
    WEDVAULT_FILES_DIR: path.join(dir, 'files'),
    WEDVAULT_MASTER_KEY: randomBytes(32).toString('hex'),
    LOG_LEVEL: 'warn',
  });
  const ctx = await createContext(config, { log: createLogger('warn') });
  const redis = new Redis(REDIS_URL);
  try {
    const before = await usedMemory(redis);
    let t = performance.now();
    const first = await runCadenceTick(ctx);
    const firstWall = (performance.now() - t) / 1000;
    const afterFirst = await usedMemory(redis);
    t = performance.now();
    const steady = await runCadenceTick(ctx);
    const steadyWall = (performance.now() - t) / 1000;
    const afterSteady = await usedMemory(redis);
    t = performance.now();
    const preview = await previewSchedules(ctx, 1);
    const previewWall = (performance.now() - t) / 1000;
    const jobs = await ctx.queues.queues[QUEUES.backup].count();
    return {
      case: 'schedule-plan',
      weddings,
      first_tick: {
        wall_s: round(firstWall),
        due: first.due,
        redis_bytes: afterFirst - before,
        redis_bytes_per_job: Math.round((afterFirst - before) / Math.max(1, jobs)),
      },
      steady_tick: {
        wall_s: round(steadyWall),
        due: steady.due,
        redis_bytes_added: afterSteady - afterFirst,
      },
      preview_day: {
        wall_s: round(previewWall),
        backups_planned: preview.tiers.reduce((n, r) => n + r.database + r.files, 0),
      },
      note: 'Redis memory is the server-wide used_memory delta on a shared Redis: other clients add noise.',
    };
  } finally {
    await ctx.queues.queues[QUEUES.backup].obliterate({ force: true }).catch(() => undefined);
    redis.disconnect();
    await closeCeremonyPools();
    await ctx.close();
    await admin(`DROP DATABASE IF EXISTS ${source} WITH (FORCE)`);
    await admin(`DROP DATABASE IF EXISTS ${catalog} WITH (FORCE)`);
  }
}

const round = (n: number) => Math.round(n * 1000) / 1000;

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { weddings: { type: 'string', default: '100000' }, out: { type: 'string' } },
  });
  const figures = await benchSchedulePlan(Number(values.weddings));
  const out = values.out ?? path.join(ROOT, 'bench', 'results', 'schedule-plan.json');
  writeFileSync(out, JSON.stringify(figures, null, 2) + '\n');
  console.log(JSON.stringify(figures, null, 2));
}
