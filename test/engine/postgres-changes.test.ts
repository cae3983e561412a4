import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDrill } from '../../src/engine/drill.js';
import { Repository } from '../../src/engine/repo/repository.js';
import { restorePostgres } from '../../src/engine/postgres/restore.js';
import { parseChange } from '../../src/engine/postgres/changes.js';
import { backupPostgres } from '../../src/engine/postgres/backup.js';
import type { PgTree, Segment } from '../../src/engine/tree.js';
import { readRecords } from '../../src/engine/repo/records.js';
import { seedDatabase } from '../../src/seed/database.js';
import { LocalStorage } from '../../src/storage/local.js';
import { createTempDatabase, PG_ADMIN_URL, query, tableDigests, type TempDatabase } from '../helpers/pg.js';

describe('parseChange (test_decoding lines)', () => {
  it('reads keys and values of every action, quoted names and literals included', () => {
    expect(parseChange('BEGIN')).toBeUndefined();
    expect(parseChange('COMMIT')).toBeUndefined();
    const ins = parseChange(
      `table public."Odd T": INSERT: id[integer]:2 k[text]:'it''s a b' "my col"[integer[]]:null z[numeric]:-2.5 b[bit(3)]:B'101'`,
    )!;
    expect(ins.tables).toEqual([['public', 'Odd T']]);
    expect(ins.action).toBe('INSERT');
    expect([...ins.new!]).toEqual([
      ['id', '2'],
      ['k', "it's a b"],
      ['my col', null],
      ['z', '-2.5'],
      ['b', '101'],
    ]);
    const upd = parseChange(
      `table "S"."t": UPDATE: old-key: id[integer]:2 k[text]:'x' new-tuple: id[integer]:5 k[text]:'x' v[text]:unchanged-toast-datum`,
    )!;
    expect(upd.tables).toEqual([['S', 't']]);
    expect([...upd.old!]).toEqual([
      ['id', '2'],
      ['k', 'x'],
    ]);
    expect(upd.new!.get('id')).toBe('5');
    expect(upd.new!.get('v')).toBe('unchanged-toast-datum');
    const del = parseChange(`table public.t: DELETE: id[timestamp with time zone]:'2026-01-02 03:04:05+00'`)!;
    expect(del.old!.get('id')).toBe('2026-01-02 03:04:05+00');
    expect(parseChange('table public.t: DELETE: (no-tuple-data)')).toEqual({
      tables: [['public', 't']],
      action: 'DELETE',
    });
    expect(parseChange('table public.a, x."b c": TRUNCATE: cascade')!.tables).toEqual([
      ['public', 'a'],
      ['x', 'b c'],
    ]);
    expect(() => parseChange(`table public.t: INSERT: id[integer]:'unterminated`)).toThrow(/not understood/);
    expect(() => parseChange('table public.t: MERGE: x')).toThrow(/unknown action/);
  });
});

// Backups with a change slot: the next backup learns the changed rows from the slot and stores
// them as a delta on the parent's segments; restores merge them back.
const dir = mkdtempSync(path.join(tmpdir(), 'wv-pg-changes-'));
const masterKey = randomBytes(32);
const dbs: TempDatabase[] = [];
let source: TempDatabase;
let repo: Repository;

const settings = () => ({
  url: source.url,
  tenantKey: 'wedding_id',
  ceremonyDate: { table: 'weddings', column: 'wedding_date' },
  changeSlot: true,
});

async function backup(parent?: PgTree, extra: { changeSlot?: boolean } = {}) {
  const w = repo.writer();
  const tree = await backupPostgres(w, { ...settings(), ...extra, parent });
  await w.flush();
  await w.close();
  const id = (
    await repo.saveSnapshot({
      type: parent ? 'incremental' : 'full',
      tree: { postgres: tree },
      stats: w.stats,
    })
  ).id;
  return { tree, stats: w.stats, id };
}

async function restoresExactly(tree: PgTree, label: string) {
  const target = await createTempDatabase(label, { create: false });
  dbs.push(target);
  await restorePostgres(repo.reader(), tree, { targetUrl: target.url });
  expect(await tableDigests(target.url)).toEqual(await tableDigests(source.url));
  return target;
}

const slots = async () =>
  (
    await query<{ slot_name: string }>(
      PG_ADMIN_URL,
      'SELECT slot_name FROM pg_replication_slots WHERE database = $1',
      [source.name],
    )
  ).map((r) => r.slot_name);

/** The rows of the last statement of a multi-statement query. */
async function lastResult(url: string, sql: string): Promise<unknown> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const results = (await c.query(sql)) as unknown as pg.QueryResult[];
    return results.at(-1)!.rows;
  } finally {
    await c.end();
  }
}

const table = (tree: PgTree, name: string) => tree.tables.find((t) => t.name === name)!;

beforeAll(async () => {
  source = await createTempDatabase('pgchg_src', { create: false });
  dbs.push(source);
  await seedDatabase(source.url, { scale: 0.003 });
  // keys a restore must compare as text exactly as PostgreSQL prints them
  await query(
    source.url,
    `CREATE TABLE notes (wedding_id bigint NOT NULL, k text, at timestamptz, body text,
       PRIMARY KEY (k, at));
     INSERT INTO notes SELECT wedding_id, 'n' || wedding_id || E'\\t\\\\ ''é"\\n', '2026-05-01 10:00+02', 'x'
       FROM weddings`,
  );
  // server defaults that print timestamps and dates otherwise than ISO/UTC (changed again below)
  await query(PG_ADMIN_URL, `ALTER DATABASE ${source.name} SET TimeZone = 'America/New_York'`);
  await query(PG_ADMIN_URL, `ALTER DATABASE ${source.name} SET DateStyle = 'SQL, DMY'`);
  repo = await Repository.openOrInit(new LocalStorage('pg', dir), masterKey);
}, 120_000);

afterAll(async () => {
  for (const d of dbs) await d.drop();
  rmSync(dir, { recursive: true, force: true });
});

it('an incremental stores only the changed rows, and restores, whole or one wedding, exactly', async () => {
  const full = await backup();
  expect(full.tree.changes?.slot).toMatch(/^wedvault_/);
  expect(await slots()).toEqual([full.tree.changes!.slot]);

  const [w1, w2] = (
    await query<{ id: string }>(source.url, 'SELECT wedding_id::text AS id FROM weddings ORDER BY 1 LIMIT 2')
  ).map((r) => r.id);
  // keys read now must compare with rows read then, whatever the server's defaults became
  await query(PG_ADMIN_URL, `ALTER DATABASE ${source.name} SET TimeZone = 'Asia/Tokyo'`);
  // updates, a delete, inserts, a guest moved to another wedding, a key changed, tricky keys
  await query(
    source.url,
    `UPDATE guests SET dietary = 'changed' WHERE guest_id % 50 = 0;
     DELETE FROM rsvps WHERE guest_id IN (SELECT guest_id FROM guests WHERE guest_id % 97 = 1);
     DELETE FROM guests WHERE guest_id % 97 = 1;
     INSERT INTO guests (wedding_id, full_name) VALUES (${w1}, 'Late Addition'), (${w2}, 'Another');
     UPDATE rsvps SET wedding_id = ${w2} WHERE guest_id = (SELECT min(guest_id) FROM guests WHERE wedding_id = ${w1});
     UPDATE guests SET wedding_id = ${w2} WHERE guest_id = (SELECT min(guest_id) FROM guests WHERE wedding_id = ${w1});
     UPDATE notes SET k = 'renamed ' || k, body = 'changed' WHERE wedding_id = ${w1};
     DELETE FROM notes WHERE wedding_id = ${w2};
     INSERT INTO notes VALUES (${w2}, E'new\\ttab', '2026-05-01 09:00+00', 'y')`,
  );
  const inc = await backup(full.tree);
  const guests = table(inc.tree, 'guests');
  expect(guests.deltas).toHaveLength(1);
  expect(guests.segmentList).toEqual(table(full.tree, 'guests').segmentList); // the base is the parent's
  expect(guests.digest).toBeUndefined();
  const [count] = await query<{ n: string }>(source.url, 'SELECT count(*)::text AS n FROM guests');
  expect(guests.rowCount).toBe(Number(count!.n));
  expect(table(inc.tree, 'notes').deltas).toHaveLength(1);
  // a table the slot names no row of is the parent's, not read
  expect(table(inc.tree, 'venues')).toMatchObject({
    reused: true,
    segmentList: table(full.tree, 'venues').segmentList,
  });
  // the deleted guests' messages went with them (ON DELETE CASCADE); the slot follows plain tables
  // only, so the partitioned table is read whole, and it alone
  const readWhole = inc.tree.tables.filter((t) => !t.reused && !t.deltas);
  expect(readWhole.map((t) => `${t.schema}.${t.name}`)).toEqual(['app.guest_messages']);
  // of the rest only the changed rows were read: a small part of the guests table
  expect(inc.stats.bytesRead - (readWhole[0]!.bytes ?? 0)).toBeLessThan(
    (table(full.tree, 'guests').bytes ?? 0) / 5,
  );
  // a wedding's few changed rows are sealed into the delta's records, not stored as a blob each
  const changedSegments: Segment[] = [];
  for await (const s of readRecords<Segment>(repo.reader(), guests.deltas![0]!.segmentList))
    changedSegments.push(s);
  expect(changedSegments.length).toBeGreaterThan(10);
  expect(changedSegments.filter((s) => s.ref.blobs.length > 0 || !s.ref.inline)).toEqual([]);
  // (the table read whole stores a blob per wedding, as a full backup does)
  let wholeSegments = 0;
  for await (const _ of readRecords<Segment>(repo.reader(), readWhole[0]!.segmentList!)) wholeSegments++;
  expect(inc.stats.blobsNew).toBeLessThan(changedSegments.length / 2 + wholeSegments);
  await restoresExactly(inc.tree, 'pgchg_inc1');

  // a second delta on the first; one wedding alone holds exactly its rows, moved guest included
  await query(
    source.url,
    `UPDATE guests SET notes = 'second' WHERE guest_id % 40 = 3;
     UPDATE notes SET body = 'again' WHERE wedding_id = ${w1}`,
  );
  const inc2 = await backup(inc.tree);
  expect(table(inc2.tree, 'guests').deltas).toHaveLength(2);
  await restoresExactly(inc2.tree, 'pgchg_inc2');
  for (const w of [w1!, w2!]) {
    const one = await createTempDatabase('pgchg_one', { create: false });
    dbs.push(one);
    await restorePostgres(repo.reader(), inc2.tree, { targetUrl: one.url, wedding: w });
    for (const t of ['guests', 'notes']) {
      const sql = `SET TimeZone = 'UTC'; SET DateStyle = 'ISO';
        SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) AS d FROM ${t} x WHERE wedding_id = ${w}`;
      expect(await lastResult(one.url, sql)).toEqual(await lastResult(source.url, sql));
    }
  }
  // as an SQL script too
  const chunks: Buffer[] = [];
  const { Writable } = await import('node:stream');
  await restorePostgres(repo.reader(), inc2.tree, {
    wedding: w1,
    asSql: new Writable({
      write(c: Buffer, _e, cb) {
        chunks.push(c);
        cb();
      },
    }),
  });
  expect(Buffer.concat(chunks).toString()).toContain('renamed n');

  // the drill proves the merged tables by their set of rows
  const drill = await runDrill(repo, inc2.id, { scratchServerUrl: PG_ADMIN_URL });
  expect(drill.problems).toEqual([]);

  // a truncated table is read whole again, and so is one whose replica identity would not name
  // a key an update leaves; the others keep their deltas
  await query(source.url, `TRUNCATE notes; INSERT INTO notes VALUES (${w1}, 'fresh', now(), 'z')`);
  await query(
    source.url,
    `ALTER TABLE venues REPLICA IDENTITY NOTHING; UPDATE venues SET capacity = capacity + 1`,
  );
  const inc3 = await backup(inc2.tree);
  expect(table(inc3.tree, 'venues').reused).toBeUndefined();
  expect(table(inc3.tree, 'venues').deltas).toBeUndefined();
  expect(table(inc3.tree, 'notes').deltas).toBeUndefined();
  expect(table(inc3.tree, 'notes').rowCount).toBe(1);
  expect(table(inc3.tree, 'guests').deltas).toHaveLength(2);
  await restoresExactly(inc3.tree, 'pgchg_inc3');

  // a new column (no rewrite) changes the table's shape: read whole, then deltas again after it
  await query(
    source.url,
    `ALTER TABLE guests ADD COLUMN seat text DEFAULT 'A1'; UPDATE guests SET seat = 'B2' WHERE guest_id % 61 = 0`,
  );
  const inc4 = await backup(inc3.tree);
  expect(table(inc4.tree, 'guests').deltas).toBeUndefined();
  expect(table(inc4.tree, 'guests').digest).toMatch(/^[0-9a-f]{64}$/);
  await query(source.url, `UPDATE guests SET seat = 'C3' WHERE guest_id % 59 = 0`);
  const inc5 = await backup(inc4.tree);
  expect(table(inc5.tree, 'guests').deltas).toHaveLength(1);
  await restoresExactly(inc5.tree, 'pgchg_inc5');
}, 180_000);

it('without the parent slot, or with slots off, an incremental reads changed tables whole', async () => {
  const base = await backup();
  await query(PG_ADMIN_URL, 'SELECT pg_drop_replication_slot($1)', [base.tree.changes!.slot]);
  await query(source.url, `UPDATE guests SET dietary = 'gone slot' WHERE guest_id % 30 = 0`);
  const inc = await backup(base.tree);
  expect(table(inc.tree, 'guests').deltas).toBeUndefined();
  expect(table(inc.tree, 'guests').digest).toMatch(/^[0-9a-f]{64}$/);
  await restoresExactly(inc.tree, 'pgchg_noslot');

  // a backup that fails after creating its slot drops it
  const before = await slots();
  const w = repo.writer();
  await expect(backupPostgres(w, { ...settings(), parent: inc.tree, sortMemory: 'a lot' })).rejects.toThrow(
    /work_mem/,
  );
  await w.close();
  expect(await slots()).toEqual(before);

  const off = await backup(inc.tree, { changeSlot: false });
  expect(off.tree.changes).toBeUndefined();
  for (const s of await slots()) await query(PG_ADMIN_URL, 'SELECT pg_drop_replication_slot($1)', [s]);
}, 120_000);
