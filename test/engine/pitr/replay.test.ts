import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { pinOutputSettings } from '../../../src/engine/postgres/catalog.js';
import { replayTransactions } from '../../../src/engine/postgres/replay.js';
import { settleSequences } from '../../../src/engine/postgres/sequences.js';
import { peekTransactions } from '../../../src/engine/pitr/decode.js';
import { DDL_MESSAGE_PREFIX, type Txn } from '../../../src/engine/pitr/types.js';
import { createTempDatabase, query, tableDigests, type TempDatabase } from '../../helpers/pg.js';

const SCHEMA = `
  CREATE TYPE mood AS ENUM ('calm', 'it''s fine');
  CREATE TABLE every_type (
    id int PRIMARY KEY, big bigint, num numeric(14,4), nan numeric, r real, d double precision,
    ok boolean, t text, v varchar(8), ch char(3), b bytea, ints int[], texts text[],
    j json, jb jsonb, ts timestamp(6), tz timestamptz, day date, tm time, iv interval, u uuid,
    ip inet, m mood, p point, rg int4range, tv tsvector,
    doubled int GENERATED ALWAYS AS (id * 2) STORED);
  CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text);
  CREATE TABLE serial_t (id serial PRIMARY KEY, note text);
  CREATE TABLE keyless (a int, b text);
  ALTER TABLE keyless REPLICA IDENTITY FULL;
  CREATE TABLE parent (id int PRIMARY KEY);
  CREATE TABLE child (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES parent ON DELETE CASCADE, big text);
  CREATE TABLE big_toast (id int PRIMARY KEY, doc text, n int);
`;

const ROW = `(1, 9223372036854775807, 12345.6789, 'NaN', 0.1, 1e-300, true,
  E'quote '' backslash \\\\ tab \\t newline \\n end', 'eight ch', 'ab', '\\x00ff10'::bytea,
  '{1,NULL,3}', '{"a,b","q\\"uote",NULL,""}', '{"k": [1, 2.50, "x"]  }', '{"k": {"z": null}}',
  '2026-02-03 04:05:06.789012', '2026-02-03 04:05:06.5+05:30', '2026-02-28', '23:59:59.999999',
  '1 year 2 mons 3 days 04:05:06.5', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '10.1.2.3/8', 'it''s fine',
  '(1.5,-2)', '[1,10)', 'fat:1 cat:2')`;

describe('replay of a decoded stream', () => {
  let src: TempDatabase;
  let dst: TempDatabase;
  let each: TempDatabase;
  let c: pg.Client;
  const slot = `wv_replay_${process.pid}`;
  const txns: Txn[] = [];

  beforeAll(async () => {
    src = await createTempDatabase('pitr_replay_src');
    dst = await createTempDatabase('pitr_replay_dst');
    each = await createTempDatabase('pitr_replay_each');
    c = new pg.Client({ connectionString: src.url });
    await c.connect();
    await pinOutputSettings(c);
    await c.query(SCHEMA);
    await query(dst.url, SCHEMA);
    await query(each.url, SCHEMA);
    await query(each.url, `INSERT INTO big_toast VALUES (1, repeat(md5('x'), 10000), 1)`);
    await c.query(`INSERT INTO big_toast VALUES (1, repeat(md5('x'), 10000), 1)`);
    await query(dst.url, `INSERT INTO big_toast VALUES (1, repeat(md5('x'), 10000), 1)`);
    await c.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [slot]);

    await c.query(`INSERT INTO every_type VALUES ${ROW}`);
    await c.query(`INSERT INTO every_type (id, t, ok, nan, d) VALUES (2, NULL, false, '-Infinity', 'Infinity'),
      (3, '', NULL, 0, -0.000001)`);
    await c.query(`UPDATE every_type SET t = 'changed', b = NULL, ints = '{}' WHERE id = 2`);
    await c.query(`UPDATE every_type SET id = 4 WHERE id = 3`); // key change: old key in the stream
    await c.query(`DELETE FROM every_type WHERE id = 1`);
    await c.query(`INSERT INTO ident (note) VALUES ('a'), ('b'), ('c')`);
    await c.query(`UPDATE ident SET note = 'B' WHERE id = 2`);
    await c.query(`INSERT INTO serial_t (note) SELECT 'n' || g FROM generate_series(1, 5) g`);
    await c.query(`INSERT INTO keyless VALUES (1, 'x'), (1, 'x'), (2, NULL)`);
    await c.query(`DELETE FROM keyless WHERE ctid = (SELECT ctid FROM keyless WHERE a = 1 LIMIT 1)`);
    await c.query(`UPDATE keyless SET b = 'y' WHERE a = 2`);
    await c.query(
      `INSERT INTO parent SELECT generate_series(1, 3); INSERT INTO child VALUES (1, 1, 'a'), (2, 2, 'b')`,
    );
    await c.query(`DELETE FROM parent WHERE id = 1`); // cascade arrives as its own change
    await c.query(`UPDATE big_toast SET n = 2 WHERE id = 1`); // doc unchanged: toasted, not printed
    await c.query('BEGIN');
    await c.query(`INSERT INTO parent VALUES (10)`);
    await c.query(`SELECT pg_logical_emit_message(true, $1, $2)`, [
      DDL_MESSAGE_PREFIX,
      'ALTER TABLE child ADD COLUMN added int DEFAULT 7',
    ]);
    await c.query(`ALTER TABLE child ADD COLUMN added int DEFAULT 7`);
    await c.query(`INSERT INTO child VALUES (10, 10, 'ten', 70)`);
    await c.query('COMMIT');
    await c.query(`TRUNCATE serial_t RESTART IDENTITY`);
    await c.query(`INSERT INTO serial_t (note) VALUES ('after truncate')`);
    for await (const t of peekTransactions(c, slot)) txns.push(t);
  });
  afterAll(async () => {
    await c.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => undefined);
    await c.end();
    await src.drop();
    await dst.drop();
    await each.drop();
  });

  it('brings the target to the source, value for value', async () => {
    expect(
      txns.some((t) => t.changes.some((x) => x.kind === 'row' && x.new?.doc === 'unchanged-toast-datum')),
    ).toBe(true);
    const r = await replayTransactions(dst.url, txns, { batchBytes: 200 });
    expect(r.txns).toBe(txns.length);
    expect(r.missed).toEqual([]);
    expect(r.last?.commitLsn).toBe(txns.at(-1)!.commitLsn);
    expect(await tableDigests(dst.url)).toEqual(await tableDigests(src.url));
    // the generated column is computed by the target from the replayed key
    const [row] = await query<{ doubled: number }>(dst.url, 'SELECT doubled FROM every_type WHERE id = 4');
    expect(row).toEqual({ doubled: 8 });
    // one commit per source transaction, one round trip for all: the same result
    const e = await replayTransactions(each.url, txns, { commitEach: true });
    expect(e.txns).toBe(txns.length);
    expect(await tableDigests(each.url)).toEqual(await tableDigests(src.url));
  });

  it('sets sequences to at least the recorded position and the owning column', async () => {
    await settleSequences(dst.url, { 'public.ident_id_seq': '40' });
    const [s] = await query<{ a: string; b: string }>(
      dst.url,
      `SELECT (SELECT last_value FROM ident_id_seq)::text AS a, (SELECT last_value FROM serial_t_id_seq)::text AS b`,
    );
    expect(s).toEqual({ a: '40', b: '1' });
    // a later insert takes a fresh key, as on the source
    await query(dst.url, `INSERT INTO serial_t (note) VALUES ('next')`);
    expect((await query<{ id: number }>(dst.url, `SELECT max(id) AS id FROM serial_t`))[0]!.id).toBe(2);
  });

  it('reports updates and deletes that find no row', async () => {
    const stray: Txn = {
      xid: '1',
      commitLsn: '0/1',
      commitTime: '2026-01-01T00:00:00Z',
      changes: [{ kind: 'row', op: 'DELETE', schema: 'public', table: 'parent', old: { id: '999' } }],
    };
    const unkeyed: Txn = {
      ...stray,
      changes: [{ kind: 'row', op: 'DELETE', schema: 'public', table: 'keyless' }],
    };
    const point: Txn = {
      xid: '2',
      commitLsn: '0/2',
      commitTime: '2026-01-01T00:00:01Z',
      changes: [{ kind: 'message', prefix: 'wedvault_restore_point', content: 'before the migration' }],
    };
    // a transaction with nothing to apply still counts
    expect(await replayTransactions(dst.url, [point])).toMatchObject({ txns: 1, last: { commitLsn: '0/2' } });
    const r = await replayTransactions(dst.url, [stray, unkeyed]);
    // what the stream cannot place is known as it is read, what found no row once it ran
    expect(r.missed).toHaveLength(2);
    expect(r.missed).toEqual(
      expect.arrayContaining([
        { table: 'public.parent', op: 'DELETE', key: '{"id":"999"}' },
        { table: 'public.keyless', op: 'DELETE', key: '(the stream names no key)' },
      ]),
    );
  });

  it('one wedding: an UPDATE inserts the row that moved in, unless a toasted value is missing', async () => {
    const moved = (table: string, row: Record<string, string>): Txn => ({
      xid: '3',
      commitLsn: '0/3',
      commitTime: '2026-01-01T00:00:02Z',
      changes: [{ kind: 'row', op: 'UPDATE', schema: 'public', table, new: row }],
    });
    const r = await replayTransactions(
      dst.url,
      [
        moved('parent', { id: '500' }),
        moved('big_toast', { id: '77', doc: 'unchanged-toast-datum', n: '3' }),
      ],
      { wedding: '1' },
    );
    expect(await query(dst.url, 'SELECT id FROM parent WHERE id = 500')).toEqual([{ id: 500 }]);
    expect(r.missed).toEqual([{ table: 'public.big_toast', op: 'UPDATE', key: '{"id":"77"}' }]);
  });

  it('asks for the privilege replica mode needs instead of replaying with triggers on', async () => {
    const role = `wv_replay_${process.pid}`;
    await query(dst.url, `CREATE ROLE ${role} LOGIN`);
    try {
      const u = new URL(dst.url);
      u.username = role;
      await expect(replayTransactions(u.toString(), txns)).rejects.toThrow(ConfigError);
      await expect(replayTransactions(u.toString(), txns)).rejects.toThrow(/session_replication_role/);
    } finally {
      await query(dst.url, `DROP ROLE ${role}`);
    }
  });
});
