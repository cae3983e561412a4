// The source guard's readings against a real PostgreSQL: busy sessions push the active-connection
// count over its limit and back; custom checks and replication lag are judged as configured.
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { judgePressure, readPressure } from '../../src/engine/postgres/pressure.js';
import { createTempDatabase, type TempDatabase } from '../helpers/pg.js';

let db: TempDatabase;
beforeAll(async () => {
  db = await createTempDatabase('pressure');
});
afterAll(async () => {
  await db?.drop();
});

const limits = {
  maxActiveConnections: 3,
  maxReplicationLagSeconds: 60,
  checks: [{ name: 'queue_rows', sql: 'SELECT 7', max: 5 }],
};

it('counts busy sessions of the source database, not idle ones, and judges them', async () => {
  const quiet = await readPressure(db.url, { checks: [] });
  const idle = await Promise.all(
    Array.from({ length: 5 }, async () => {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      return c;
    }),
  );
  const busy = idle.slice(0, 4);
  // four sessions each in a long query: active; the fifth stays idle and does not count
  const sleeps = busy.map((c) => c.query('SELECT pg_sleep(30)').catch(() => undefined));
  try {
    const reading = await readPressure(db.url, { checks: [] });
    expect(reading.activeConnections).toBe(quiet.activeConnections + 4);
    expect(judgePressure(reading, { maxActiveConnections: 3, checks: [] })).toEqual({
      under: true,
      reasons: [`active connections ${reading.activeConnections} > 3`],
    });
  } finally {
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query(
      `SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep%'`,
    );
    await admin.end();
    await Promise.all(sleeps);
    await Promise.all(idle.map((c) => c.end()));
  }
  const after = await readPressure(db.url, { checks: [] });
  expect(judgePressure(after, { maxActiveConnections: 3, checks: [] }).under).toBe(false);
});

it('runs custom checks and reads the replication lag (none on a lone server)', async () => {
  const reading = await readPressure(db.url, limits);
  expect(reading.checks).toEqual([{ name: 'queue_rows', value: 7 }]);
  expect(reading.replicationLagSeconds).toBeNull();
  expect(judgePressure(reading, limits).reasons).toEqual(['queue_rows 7 > 5']);
  // custom checks run read-only: a check that writes fails instead of changing the source
  await expect(
    readPressure(db.url, { checks: [{ name: 'w', sql: 'CREATE TABLE x (a int)', max: 0 }] }),
  ).rejects.toThrow(/read-only/);
});

it('judges lag and leaves checks without a number out', () => {
  const reading = {
    activeConnections: 1,
    replicationLagSeconds: 90.25,
    checks: [{ name: 'c', value: null }],
  };
  const v = judgePressure(reading, { ...limits, checks: [{ name: 'c', sql: 'x', max: 0 }] });
  expect(v).toEqual({ under: true, reasons: ['replication lag 90.3 s > 60 s'] });
});
