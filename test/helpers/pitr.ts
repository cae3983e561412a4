/**
 * Point-in-time recovery fixtures: a base point (a database backup with a change slot) in a real
 * repository on disk, and the source's change stream captured into change segments there by a real
 * `Capture`, read back through `changeFeed` when recovery asks (after the capture has caught up).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { backupPostgres, type PostgresBackupOptions } from '../../src/engine/postgres/backup.js';
import { Capture } from '../../src/engine/pitr/capture.js';
import { changeFeed, type FeedOptions } from '../../src/engine/pitr/feed.js';
import type { Txn } from '../../src/engine/pitr/types.js';
import { Repository } from '../../src/engine/repo/repository.js';
import { LocalStorage } from '../../src/storage/local.js';

export const WEDDING_SETTINGS = {
  tenantKey: 'wedding_id',
  ceremonyDate: { table: 'weddings', column: 'ceremony_date' },
};

export interface PitrFixture {
  copies: { target: string; storage: LocalStorage }[];
  masterKey: Buffer;
  /** Base points taken, oldest first. */
  points: { id: string; lsn: string; time: string }[];
  /** A base point of the source now. */
  base(): Promise<{ id: string; lsn: string; time: string }>;
  /** The captured transactions as a feed (the capture's slot was created before the first base). */
  feed: (repo: Repository, opts: FeedOptions) => AsyncIterable<Txn>;
  /** Every feed call's options, to check what recovery asked for. */
  asked: FeedOptions[];
  cleanup(): Promise<void>;
}

export async function pitrFixture(
  url: string,
  label: string,
  settings: Omit<PostgresBackupOptions, 'url'> = WEDDING_SETTINGS,
): Promise<PitrFixture> {
  const dir = mkdtempSync(path.join(tmpdir(), `wv-${label}-`));
  const storage = new LocalStorage('local', dir);
  const masterKey = randomBytes(32);
  await Repository.init(storage, masterKey);
  const slot = `wv_${label}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const capture = new Capture({
    url,
    source: 'postgres',
    slot,
    segmentBytes: 1 << 20,
    schema: settings,
    repo: await Repository.open(storage, masterKey),
    copies: [],
  });
  await capture.step(); // the slot: its stream starts before any base point
  const points: PitrFixture['points'] = [];
  const asked: FeedOptions[] = [];
  return {
    copies: [{ target: 'local', storage }],
    masterKey,
    points,
    asked,
    async base() {
      const repo = await Repository.open(storage, masterKey);
      const w = repo.writer();
      const tree = await backupPostgres(w, {
        url,
        ...settings,
        changeSlot: true,
        slotPrefix: `wvt_${label}_`,
      });
      await w.flush();
      await w.close();
      const time = tree.snapshotTime;
      const snap = await repo.saveSnapshot({
        type: 'full',
        tree: { postgres: tree },
        stats: w.stats,
        consistentPoint: { time, lsn: tree.lsn },
      });
      const p = { id: snap.id, lsn: tree.changes!.lsn, time };
      points.push(p);
      return p;
    },
    feed(repo, opts) {
      asked.push(opts);
      return (async function* () {
        // everything committed so far into segments, then read back as recovery would
        while ((await capture.step()).txns > 0);
        yield* changeFeed(repo, opts);
      })();
    },
    async cleanup() {
      await capture.close();
      await admin.query(
        `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 OR slot_name LIKE $2`,
        [slot, `wvt_${label}_%`],
      );
      await admin.end();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every row of every user table as text, per table, sorted: for "nothing else changed" checks. */
export async function allRows(url: string): Promise<Record<string, string[]>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'`);
    const { rows: tables } = await c.query<{ t: string }>(
      `SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables
        WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
    );
    const out: Record<string, string[]> = {};
    for (const { t } of tables) {
      const { rows } = await c.query<{ r: string }>(`SELECT x::text AS r FROM ${t} x ORDER BY 1`);
      out[t] = rows.map((r) => r.r);
    }
    return out;
  } finally {
    await c.end();
  }
}
