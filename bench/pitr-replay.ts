/**
 * Replay speed of point-in-time recovery: a decoded change stream (wedding-shaped transactions of
 * a few rows: inserts, updates, deletes) applied to a target, batched (many transactions per round
 * trip, the default) against one round trip per transaction; then one wedding recovered to the end
 * of that workload against a full restore of its base point. Run by hand:
 * `npx tsx bench/pitr-replay.ts` (BENCH_PITR_TXNS, default 20000; BENCH_PG_URL).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pinOutputSettings } from '../src/engine/postgres/catalog.js';
import { replayTransactions } from '../src/engine/postgres/replay.js';
import { peekTransactions } from '../src/engine/pitr/decode.js';
import type { Txn, TxnChange } from '../src/engine/pitr/types.js';
import { recoverToTarget } from '../src/engine/pitr/recover.js';
import { backupPostgres } from '../src/engine/postgres/backup.js';
import { Repository } from '../src/engine/repo/repository.js';
import { restoreSnapshot } from '../src/engine/restore.js';
import { LocalStorage } from '../src/storage/local.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const TXNS = Number(process.env.BENCH_PITR_TXNS ?? 20_000);
const dbUrl = (name: string) => ADMIN_URL.replace(/\/[^/]*$/, `/${name}`);
const SCHEMA = `
  CREATE TABLE weddings (id int PRIMARY KEY, title text, ceremony_date date);
  CREATE TABLE guests (id bigserial PRIMARY KEY, wedding_id int NOT NULL REFERENCES weddings, name text,
    email text, tags text[], rsvp jsonb, updated timestamptz);
  CREATE TABLE payments (id bigserial PRIMARY KEY, wedding_id int NOT NULL REFERENCES weddings, amount numeric(12,2));
  INSERT INTO weddings SELECT g, 'wedding ' || g FROM generate_series(1, 100) g;
  INSERT INTO guests (wedding_id, name, email, tags, rsvp, updated)
    SELECT 1 + g % 100, 'base guest ' || g, 'b' || g || '@example.com', '{}', '{"yes": true}', '2026-01-01'
      FROM generate_series(1, 20000) g;`;

async function admin(sql: string) {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  await c.query(sql).finally(() => c.end());
}

async function main() {
  const tag = randomBytes(3).toString('hex');
  const names = {
    src: `wv_bench_pitr_src_${tag}`,
    a: `wv_bench_pitr_a_${tag}`,
    b: `wv_bench_pitr_b_${tag}`,
    c: `wv_bench_pitr_c_${tag}`,
  };
  const made = { wedding: `wv_bench_pitr_w_${tag}`, full: `wv_bench_pitr_f_${tag}` };
  const dir = mkdtempSync(path.join(tmpdir(), 'wv-bench-pitr-'));
  for (const n of Object.values(names)) await admin(`CREATE DATABASE ${n}`);
  const src = new pg.Client({ connectionString: dbUrl(names.src) });
  await src.connect();
  const slot = `wv_bench_pitr_${tag}`;
  try {
    for (const n of Object.values(names)) {
      const c = new pg.Client({ connectionString: dbUrl(n) });
      await c.connect();
      await c.query(SCHEMA).finally(() => c.end());
    }
    await pinOutputSettings(src);
    await src.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [slot]);
    const base = await basePoint(dbUrl(names.src), dir);
    // the workload: per transaction two new guests, one guest updated, a payment, now and then a delete
    await src.query(`CREATE PROCEDURE load(n int) LANGUAGE plpgsql AS $$
      BEGIN FOR i IN 1..n LOOP
        INSERT INTO guests (wedding_id, name, email, tags, rsvp, updated) VALUES
          (1 + i % 100, 'guest ' || i, 'g' || i || '@example.com', '{vegan,"table 4"}', '{"yes": true, "n": 2}', now()),
          (1 + i % 100, 'plus one ' || i, NULL, '{}', NULL, now());
        UPDATE guests SET rsvp = '{"yes": false}', updated = now() WHERE id = greatest(1, 2 * i - 7);
        INSERT INTO payments (wedding_id, amount) VALUES (1 + i % 100, i * 1.25);
        IF i % 10 = 0 THEN DELETE FROM payments WHERE id = i - 5; END IF;
        COMMIT;
      END LOOP; END $$`);
    await src.query(`CALL load($1)`, [TXNS]);
    const txns: Txn[] = [];
    for await (const t of peekTransactions(src, slot)) txns.push(t);
    const run = async (db: string, opts: { batchBytes?: number; commitEach?: boolean }) => {
      const r = await replayTransactions(dbUrl(db), txns, opts);
      return {
        mb: r.bytes / 1e6,
        s: r.ms / 1000,
        mbPerS: r.bytes / 1e6 / (r.ms / 1000),
        txnsPerS: r.txns / (r.ms / 1000),
      };
    };
    const batched = await run(names.a, {});
    const each = await run(names.b, { commitEach: true });
    const single = await run(names.c, { batchBytes: 1, commitEach: true });
    console.log(`replay of ${txns.length} transactions (${batched.mb.toFixed(1)} MB of change values)`);
    console.log(`| mode | s | MB/s | txns/s |\n|---|---|---|---|`);
    const rows = [
      ['1 MiB a round trip, one commit', batched],
      ['1 MiB a round trip, a commit per transaction', each],
      ['one transaction a round trip', single],
    ] as const;
    for (const [mode, r] of rows)
      console.log(`| ${mode} | ${r.s.toFixed(2)} | ${r.mbPerS.toFixed(2)} | ${Math.round(r.txnsPerS)} |`);
    await compareRecovery(base, txns, dbUrl(made.wedding), dbUrl(made.full));
  } finally {
    await src
      .query(
        'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()',
      )
      .catch(() => undefined);
    await src.end();
    for (const n of [...Object.values(names), ...Object.values(made)])
      await admin(`DROP DATABASE IF EXISTS ${n} WITH (FORCE)`);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A base point of the source (a backup with a change slot) in a repository on disk. */
async function basePoint(url: string, dir: string) {
  const storage = new LocalStorage('local', dir);
  const masterKey = randomBytes(32);
  const repo = await Repository.init(storage, masterKey);
  const w = repo.writer();
  const tree = await backupPostgres(w, {
    url,
    tenantKey: 'wedding_id',
    ceremonyDate: { table: 'weddings', column: 'ceremony_date' },
    changeSlot: true,
    slotPrefix: 'wv_bench_pitr_base_',
  });
  await w.flush();
  await w.close();
  const snap = await repo.saveSnapshot({
    type: 'full',
    tree: { postgres: tree },
    stats: w.stats,
    consistentPoint: { time: tree.snapshotTime, lsn: tree.lsn },
  });
  return { storage, masterKey, id: snap.id, repo };
}

/** One wedding's feed out of the whole stream, as capture's segments give it (its rows, touches). */
function weddingFeed(txns: Txn[], wedding: string): AsyncIterable<Txn> {
  const of = (c: TxnChange): TxnChange[] => {
    if (c.kind !== 'row') return [c];
    const owner = c.table === 'weddings' ? (c.new ?? c.old)?.id : (c.new ?? c.old)?.wedding_id;
    if (owner === wedding) return [c];
    const touch = {
      kind: 'touch' as const,
      schema: c.schema,
      table: c.table,
      key: c.old ?? { id: c.new!.id! },
    };
    if (c.op === 'INSERT') return [];
    return [owner === undefined ? touch : { ...touch, scope: `wedding:${owner}` }];
  };
  return (async function* () {
    for (const t of txns) {
      const changes = t.changes.flatMap(of);
      if (changes.length) yield { ...t, changes };
    }
  })();
}

/** One wedding recovered to the end of the workload against a full restore of the base point. */
async function compareRecovery(
  base: Awaited<ReturnType<typeof basePoint>>,
  txns: Txn[],
  weddingUrl: string,
  fullUrl: string,
) {
  const t0 = Date.now();
  const r = await recoverToTarget({
    copies: [{ target: 'local', storage: base.storage }],
    masterKey: base.masterKey,
    source: 'postgres',
    target: { time: new Date().toISOString() },
    wedding: '7',
    targetDatabase: weddingUrl,
    mode: 'new',
    feed: () => weddingFeed(txns, '7'),
  });
  const one = (Date.now() - t0) / 1000;
  const t1 = Date.now();
  await restoreSnapshot(base.repo, base.id, { targetDatabase: fullUrl });
  const full = (Date.now() - t1) / 1000;
  console.log(
    `\none wedding (of 100) to the end of the workload: ${one.toFixed(2)} s (${r.appliedTxns} transactions replayed, validation ${r.validation.ok ? 'ok' : r.validation.problems.join('; ')})`,
  );
  console.log(`full restore of the base point: ${full.toFixed(2)} s (ratio ${(one / full).toFixed(2)})`);
}

await main();
