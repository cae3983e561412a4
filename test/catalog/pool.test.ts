import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPool } from '../../src/catalog/db.js';
import { createTempDatabase, PG_ADMIN_URL, type TempDatabase } from '../helpers/pg.js';

let db: TempDatabase;
beforeAll(async () => {
  db = await createTempDatabase('pool');
});
afterAll(() => db.drop());

it('survives the server closing an idle connection, reports it, and goes on with a new one', async () => {
  const reported: Error[] = [];
  const pool = createPool(db.url, 2, (err) => reported.push(err));
  try {
    const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    try {
      await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
    } finally {
      await admin.end();
    }
    for (let i = 0; i < 50 && reported.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(reported.map((e) => (e as { code?: string }).code)).toEqual(['57P01']);
    const again = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    expect(again.rows[0]!.pid).not.toBe(rows[0]!.pid);
  } finally {
    await pool.end();
  }
});
