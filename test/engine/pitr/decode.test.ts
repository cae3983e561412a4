import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pinOutputSettings } from '../../../src/engine/postgres/catalog.js';
import { peekTransactions } from '../../../src/engine/pitr/decode.js';
import { DDL_MESSAGE_PREFIX, compareLsn, type Txn } from '../../../src/engine/pitr/types.js';
import { createTempDatabase, type TempDatabase } from '../../helpers/pg.js';

describe('peekTransactions (test_decoding with xids and commit times)', () => {
  let db: TempDatabase;
  let c: pg.Client;
  const slot = `wv_decode_${process.pid}`;

  beforeAll(async () => {
    db = await createTempDatabase('pitr_decode');
    c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await pinOutputSettings(c);
    await c.query(`CREATE TABLE "Odd T" (id int PRIMARY KEY, note text, b bytea, j jsonb)`);
    await c.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [slot]);
  });
  afterAll(async () => {
    await c.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => undefined);
    await c.end();
    await db.drop();
  });

  it('gathers each transaction whole, in commit order, with messages in place', async () => {
    const before = new Date();
    await c.query('BEGIN');
    await c.query(`INSERT INTO "Odd T" VALUES (1, 'it''s
two lines', '\\x00ff', '{"a": [1, "x"]}')`);
    await c.query(`SELECT pg_logical_emit_message(true, $1, $2)`, [
      DDL_MESSAGE_PREFIX,
      'ALTER TABLE x ADD y int;\nSELECT 1',
    ]);
    await c.query(`UPDATE "Odd T" SET id = 2, note = NULL WHERE id = 1`);
    await c.query('COMMIT');
    await c.query(`SELECT pg_logical_emit_message(false, 'other', 'outside')`);
    await c.query(`DELETE FROM "Odd T"`);
    await c.query(`TRUNCATE "Odd T" RESTART IDENTITY CASCADE`);
    const txns: Txn[] = [];
    for await (const t of peekTransactions(c, slot)) txns.push(t);
    expect(txns).toHaveLength(3);
    const [a, b, d] = txns as [Txn, Txn, Txn];
    expect(a.changes).toEqual([
      {
        kind: 'row',
        op: 'INSERT',
        schema: 'public',
        table: 'Odd T',
        new: { id: '1', note: "it's\ntwo lines", b: '\\x00ff', j: '{"a": [1, "x"]}' },
      },
      { kind: 'message', prefix: DDL_MESSAGE_PREFIX, content: 'ALTER TABLE x ADD y int;\nSELECT 1' },
      {
        kind: 'row',
        op: 'UPDATE',
        schema: 'public',
        table: 'Odd T',
        old: { id: '1' },
        new: { id: '2', note: null, b: '\\x00ff', j: '{"a": [1, "x"]}' },
      },
    ]);
    expect(b.changes).toEqual([
      { kind: 'row', op: 'DELETE', schema: 'public', table: 'Odd T', old: { id: '2' } },
    ]);
    expect(d.changes).toEqual([
      { kind: 'truncate', tables: [['public', 'Odd T']], cascade: true, restartSeqs: true },
    ]);
    expect(compareLsn(a.commitLsn, b.commitLsn)).toBe(-1);
    expect(compareLsn(b.commitLsn, d.commitLsn)).toBe(-1);
    expect(Date.parse(a.commitTime)).toBeGreaterThanOrEqual(before.getTime() - 1000);
    expect(a.commitTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    // bounded by LSN: only the first transaction
    const upto: Txn[] = [];
    for await (const t of peekTransactions(c, slot, { uptoLsn: a.commitLsn })) upto.push(t);
    expect(upto.map((t) => t.xid)).toEqual([a.xid]);
  });

  it('keeps a message that opens a transaction, and a transaction holding only a message', async () => {
    await c.query(`SELECT pg_drop_replication_slot($1)`, [slot]);
    await c.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [slot]);
    await c.query('BEGIN');
    await c.query(`SELECT pg_logical_emit_message(true, $1, 'ALTER TABLE "Odd T" ADD x int')`, [
      DDL_MESSAGE_PREFIX,
    ]);
    await c.query(`INSERT INTO "Odd T" (id) VALUES (9)`);
    await c.query('COMMIT');
    await c.query(`SELECT pg_logical_emit_message(true, $1, 'CREATE INDEX ON "Odd T" (note)')`, [
      DDL_MESSAGE_PREFIX,
    ]);
    await c.query(`CREATE TEMP TABLE nothing_decoded (a int)`);
    const txns: Txn[] = [];
    for await (const t of peekTransactions(c, slot)) txns.push(t);
    expect(txns.map((t) => t.changes.map((x) => x.kind))).toEqual([['message', 'row'], ['message']]);
  });
});
