/**
 * The capture worker SIGKILLed ten times under a write load (run by hand, figures in the README):
 * two worker processes with capture on; each round kills whichever holds the lease at a random
 * moment, starts a new one, and goes on. At the end the change stream must hold every committed
 * transaction of the load exactly once, in order, with no gap. Prints takeover times.
 * `npx tsx bench/pitr-kill-loop.ts` (BENCH_KILLS, default 10).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { loadConfig } from '../src/config/index.js';
import { changeFeed } from '../src/engine/pitr/feed.js';
import { pitrWindow } from '../src/engine/pitr/window.js';
import { Repository } from '../src/engine/repo/repository.js';
import { captureStatusKey } from '../src/queues/capture-status.js';
import { createStorage } from '../src/storage/factory.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const ADMIN = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const KILLS = Number(process.env.BENCH_KILLS ?? 10);
const id = randomBytes(3).toString('hex');
const url = (db: string) => ADMIN.replace(/\/[^/]*$/, `/${db}`);
const dir = mkdtempSync(path.join(tmpdir(), 'wv-kill-loop-'));
const env: Record<string, string> = {
  DATABASE_URL: url(`wv_kl_catalog_${id}`),
  SOURCE_DATABASE_URL: url(`wv_kl_source_${id}`),
  WEDVAULT_REDIS_PREFIX: `wvkl-${id}`,
  WEDVAULT_DATA_DIR: path.join(dir, 'data'),
  WEDVAULT_MASTER_KEY: randomBytes(32).toString('hex'),
  WEDVAULT_CONFIG: path.join(dir, 'config.json'),
  LOG_LEVEL: 'warn',
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sql(u: string, text: string, params: unknown[] = []) {
  const c = new pg.Client({ connectionString: u });
  await c.connect();
  try {
    return (await c.query(text, params)).rows;
  } finally {
    await c.end();
  }
}

function worker(): ChildProcess {
  return spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'src/main.ts'), '--role', 'worker', '--queues', 'purge'],
    {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: 'ignore',
    },
  );
}

async function main() {
  mkdirSync(env.WEDVAULT_DATA_DIR!, { recursive: true });
  writeFileSync(
    env.WEDVAULT_CONFIG!,
    JSON.stringify({
      sources: { postgres: { pitr: { enabled: true, segmentSeconds: 0.5, slot: `wv_kl_${id}` } } },
    }),
  );
  await sql(ADMIN, `CREATE DATABASE wv_kl_source_${id}`);
  await sql(
    env.SOURCE_DATABASE_URL!,
    `CREATE TABLE weddings (wedding_id int PRIMARY KEY, wedding_date date);
     CREATE TABLE log (id bigserial PRIMARY KEY, wedding_id int NOT NULL REFERENCES weddings, n int);
     INSERT INTO weddings SELECT g, '2027-01-01' FROM generate_series(1, 10) g`,
  );
  const config = loadConfig({ ...process.env, ...env });
  // the repository a first backup would have made (the capture never makes one)
  await Repository.init(createStorage(config.targets[0]!, process.env), config.masterKey);
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const status = captureStatusKey(`{${env.WEDVAULT_REDIS_PREFIX}}`);
  const holder = async () => (await redis.hget(status, 'holder')) ?? '';
  const procs = [worker(), worker()];
  const takeovers: number[] = [];
  let stop = false;
  try {
    // the load starts once a capture holds the lease (its slot exists): what it writes is in the stream
    while (!(await holder())) await sleep(100);
    let n = 0;
    const load = (async () => {
      const c = new pg.Client({ connectionString: env.SOURCE_DATABASE_URL });
      await c.connect();
      while (!stop) await c.query('INSERT INTO log (wedding_id, n) VALUES ($1, $2)', [1 + (n % 10), ++n]);
      await c.end();
    })();
    for (let k = 0; k < KILLS; k++) {
      await sleep(1000 + Math.random() * 2000);
      const h = await holder();
      const victim = procs.find((p) => h.startsWith(`${p.pid}.`));
      if (!victim) throw new Error(`no process holds the lease (${h})`);
      const killedAt = Date.now();
      victim.kill('SIGKILL');
      procs.splice(procs.indexOf(victim), 1, worker());
      while ((await holder()) === h) await sleep(50);
      takeovers.push((Date.now() - killedAt) / 1000);
      console.log(`kill ${k + 1}: taken over in ${takeovers.at(-1)!.toFixed(1)} s, ${n} transactions so far`);
    }
    stop = true;
    await load;
    await sleep(3000); // a few segment periods: the last transactions sealed
    const repo = await Repository.open(createStorage(config.targets[0]!, process.env), config.masterKey);
    const keys = await repo.listSegmentKeys('postgres');
    const start = (await repo.segmentSummary(keys[0]!)).startLsn;
    const seen: number[] = [];
    for await (const t of changeFeed(repo, {
      source: 'postgres',
      afterLsn: start,
      until: { time: new Date(Date.now() + 60_000).toISOString() },
    }))
      for (const c of t.changes) if (c.kind === 'row' && c.table === 'log') seen.push(Number(c.new!.n));
    const missing = n - new Set(seen).size;
    const duplicates = seen.length - new Set(seen).size;
    const ordered = seen.every((v, i) => i === 0 || v > seen[i - 1]!);
    const gaps = (await pitrWindow(repo, 'postgres', [])).gaps.length;
    const sorted = [...takeovers].sort((a, b) => a - b);
    const record = {
      case: 'pitr-capture-kill-loop',
      kills: KILLS,
      transactions: n,
      segments: keys.length,
      missing,
      duplicates,
      ordered,
      gaps,
      takeover_s: { median: sorted[Math.floor(sorted.length / 2)], max: sorted.at(-1) },
    };
    writeFileSync(
      path.join(ROOT, 'bench', 'results', 'pitr-kill-loop.json'),
      `${JSON.stringify(record, null, 2)}\n`,
    );
    console.log(JSON.stringify(record, null, 2));
    if (missing || duplicates || !ordered || gaps) process.exitCode = 1;
  } finally {
    stop = true;
    for (const p of procs) p.kill('SIGKILL');
    await sleep(500);
    await sql(
      env.SOURCE_DATABASE_URL!,
      `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'wv_kl_${id}' AND NOT active`,
    ).catch(() => undefined);
    await sql(ADMIN, `DROP DATABASE IF EXISTS wv_kl_source_${id} WITH (FORCE)`);
    await sql(ADMIN, `DROP DATABASE IF EXISTS wv_kl_catalog_${id} WITH (FORCE)`);
    const keysLeft = await redis.keys(`{${env.WEDVAULT_REDIS_PREFIX}}*`);
    if (keysLeft.length) await redis.del(...keysLeft);
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
