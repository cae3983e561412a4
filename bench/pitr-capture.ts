/**
 * Continuous capture under a write load: the source's throughput with capture on against off
 * (alternating, medians) and the RPO while it runs (how old the newest commit held on both copies
 * is, sampled every 100 ms: p50/p99). Writes bench/results/pitr-capture.json. Run by hand:
 * `npx tsx bench/pitr-capture.ts` (BENCH_PITR_SECONDS per side, default 20; BENCH_PITR_CLIENTS,
 * default 4; BENCH_PITR_ROUNDS, default 3; BENCH_PG_URL).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Capture } from '../src/engine/pitr/capture.js';
import { Repository } from '../src/engine/repo/repository.js';
import { LocalStorage } from '../src/storage/local.js';

const ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const SECONDS = Number(process.env.BENCH_PITR_SECONDS ?? 20);
const CLIENTS = Number(process.env.BENCH_PITR_CLIENTS ?? 4);
const ROUNDS = Number(process.env.BENCH_PITR_ROUNDS ?? 3);
const SEGMENT_SECONDS = Number(process.env.BENCH_PITR_SEGMENT_SECONDS ?? 5);
const DB = `wv_bench_pitr_${randomBytes(3).toString('hex')}`;
const URL = ADMIN_URL.replace(/\/[^/]*$/, `/${DB}`);
const SLOT = `${DB}_slot`;

async function sql(url: string, text: string, params: unknown[] = []) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, params)).rows;
  } finally {
    await c.end();
  }
}

/** Wedding-table transactions from `CLIENTS` connections for `SECONDS`: how many committed. */
async function load(): Promise<number> {
  const until = Date.now() + SECONDS * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, k) => {
      const c = new pg.Client({ connectionString: URL });
      await c.connect();
      let i = 0;
      while (Date.now() < until) {
        const w = 1 + ((k * 7919 + i++) % 100);
        await c.query('BEGIN');
        const g = await c.query<{ id: string }>(
          `INSERT INTO guests (wedding_id, name, rsvp) VALUES ($1, $2, '{"yes": true}') RETURNING id`,
          [w, `guest ${k}.${i}`],
        );
        await c.query(`UPDATE payments SET amount = amount + 1 WHERE wedding_id = $1`, [w]);
        await c.query(`UPDATE guests SET rsvp = '{"yes": false}' WHERE id = $1`, [g.rows[0]!.id]);
        await c.query('COMMIT');
        done++;
      }
      await c.end();
    }),
  );
  return done;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

async function main() {
  await sql(ADMIN_URL, `CREATE DATABASE ${DB}`);
  await sql(
    URL,
    `CREATE TABLE weddings (id int PRIMARY KEY, ceremony_date date);
     CREATE TABLE guests (id bigserial PRIMARY KEY, wedding_id int NOT NULL REFERENCES weddings, name text, rsvp jsonb);
     CREATE TABLE payments (id bigserial PRIMARY KEY, wedding_id int NOT NULL REFERENCES weddings, amount numeric(12,2));
     INSERT INTO weddings SELECT g, '2027-06-01' FROM generate_series(1, 100) g;
     INSERT INTO payments (wedding_id, amount) SELECT g, 0 FROM generate_series(1, 100) g;`,
  );
  const dir = mkdtempSync(path.join(tmpdir(), 'wv-bench-pitr-'));
  const primary = new LocalStorage('a', path.join(dir, 'a'));
  const second = new LocalStorage('b', path.join(dir, 'b'));
  const repo = await Repository.init(primary, randomBytes(32));
  const capture = new Capture({
    url: URL,
    source: 'postgres',
    slot: SLOT,
    segmentBytes: 8 << 20,
    schema: { tenantKey: 'wedding_id', ceremonyDate: { table: 'weddings', column: 'ceremony_date' } },
    repo,
    copies: [{ target: 'b', storage: second }],
  });
  await capture.step();
  const off: number[] = [];
  const on: number[] = [];
  const rpo: number[] = [];
  const segments: number[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      off.push((await load()) / SECONDS);
      // on: the capture loop as the worker runs it, and the RPO sampled beside it
      let stop = false;
      let durable = Date.now(); // the newest commit on both copies, as wall time
      let written = 0;
      const loop = (async () => {
        while (!stop) {
          const started = Date.now();
          const s = await capture.step();
          if (s.key) written++;
          if (s.lastCommit) durable = Date.parse(s.lastCommit);
          // as the worker does: a step cut short by its size bound is followed at once
          if (!s.more)
            await new Promise((res) =>
              setTimeout(res, Math.max(0, SEGMENT_SECONDS * 1000 - (Date.now() - started))),
            );
        }
      })();
      const sampler = setInterval(() => rpo.push((Date.now() - durable) / 1000), 100);
      on.push((await load()) / SECONDS);
      clearInterval(sampler);
      stop = true;
      await loop;
      segments.push(written);
      console.log(
        `round ${r + 1}: off ${off.at(-1)!.toFixed(0)} tx/s, on ${on.at(-1)!.toFixed(0)} tx/s, ${written} segments`,
      );
    }
  } finally {
    await capture.close();
    await sql(URL, 'SELECT pg_drop_replication_slot($1)', [SLOT]).catch(() => undefined);
    await sql(ADMIN_URL, `DROP DATABASE ${DB} WITH (FORCE)`);
    rmSync(dir, { recursive: true, force: true });
  }
  const record = {
    case: 'pitr-capture-under-load',
    clients: CLIENTS,
    seconds_per_side: SECONDS,
    segment_seconds: SEGMENT_SECONDS,
    tps_capture_off: { runs: off, median: median(off) },
    tps_capture_on: { runs: on, median: median(on) },
    overhead: 1 - median(on) / median(off),
    rpo_s: { p50: pct(rpo, 0.5), p99: pct(rpo, 0.99), max: Math.max(...rpo), samples: rpo.length },
    segments_per_round: segments,
  };
  const out = path.resolve(import.meta.dirname, 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'pitr-capture.json'), `${JSON.stringify(record, null, 2)}\n`);
  console.log(JSON.stringify(record, null, 2));
}

await main();
