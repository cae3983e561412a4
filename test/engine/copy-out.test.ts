import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { copyOut } from '../../src/engine/postgres/copy-out.js';
import { createTempDatabase, type TempDatabase } from '../helpers/pg.js';

let db: TempDatabase;
let client: pg.Client;

beforeAll(async () => {
  db = await createTempDatabase('copyout');
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  // small rows, empty rows, and rows far bigger than a socket read, so messages and their headers
  // are cut at every kind of place
  await client.query(`CREATE TABLE t (id int PRIMARY KEY, body text);
    INSERT INTO t SELECT i, CASE WHEN i % 997 = 0 THEN repeat(md5(i::text), 9000)
                                 WHEN i % 13 = 0 THEN '' ELSE 'row ' || i || E'\\ttab\\\\' END
      FROM generate_series(1, 60000) i`);
}, 60_000);

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

async function all(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of stream) parts.push(b);
  return Buffer.concat(parts);
}

it('gives exactly the bytes pg-copy-streams gives, and the connection goes on', async () => {
  const sql = 'COPY (SELECT * FROM t ORDER BY id) TO STDOUT';
  const ours = await all(client.query(copyOut(sql)));
  const theirs = await all(client.query(copyTo(sql)));
  expect(ours.length).toBeGreaterThan(17_000_000);
  expect(ours.equals(theirs)).toBe(true);
  // the bytes after the COPY went back to pg: the next query runs
  expect((await client.query('SELECT 41 + 1 AS n')).rows[0].n).toBe(42);
  expect((await all(client.query(copyOut('COPY (SELECT 1 WHERE false) TO STDOUT')))).length).toBe(0);
});

it('fails with the server error when the COPY fails midway, and the connection goes on', async () => {
  const failing = client.query(
    copyOut('COPY (SELECT id, 1 / (id - 30000) FROM t ORDER BY id) TO STDOUT'),
  ) as unknown as AsyncIterable<Buffer>;
  await expect(all(failing)).rejects.toThrow(/division by zero/);
  expect((await client.query('SELECT 1 AS n')).rows[0].n).toBe(1);
});
