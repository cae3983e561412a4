import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPool, ensureDatabase } from '../../src/catalog/db.js';
import { createTempDatabase, PG_ADMIN_URL, type TempDatabase } from '../helpers/pg.js';
import { dbUrl, dropDatabase } from '../helpers/service.js';

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

it('processes starting together all create-or-find the catalog database', async () => {
  const name = `wv_test_race_${Date.now().toString(36)}`;
  const url = dbUrl(name);
  try {
    // the service's roles start at once on a fresh machine: each checks, then creates
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => ensureDatabase(url)));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    try {
      const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      expect(rowCount).toBe(1);
    } finally {
      await admin.end();
    }
  } finally {
    await dropDatabase(name);
  }
});
