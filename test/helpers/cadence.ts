/** Test data for wedding-aware schedules: a source weddings table, and recovery points in the catalog at chosen times. */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { PG_ADMIN_URL } from './service.js';

/** The schedules a rebuild installs by default, in id order. */
export const SCHEDULE_IDS = [
  'daily-purge',
  'dr-drill-catalog-lost',
  'dr-drill-corruption',
  'dr-drill-database-lost',
  'dr-drill-primary-target-lost',
  'dr-drill-region-lost',
  'dr-drill-wedding-deleted',
  'hourly-files',
  'nightly-full',
  'wedding-cadence',
  'weekly-drill',
  'weekly-full-verify',
];

export interface TestWedding {
  id: string;
  date: string | null;
  tz?: string;
  region?: string;
}

/** Creates the source database (if needed) with `weddings (id, wedding_date, tz, region)` holding these rows. */
export async function createWeddingsSource(url: string, weddings: TestWedding[]): Promise<void> {
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  const name = new URL(url).pathname.slice(1);
  try {
    await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)}`);
  } catch (err) {
    if ((err as { code?: string }).code !== '42P04') throw err; // exists
  } finally {
    await admin.end();
  }
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(
      'CREATE TABLE IF NOT EXISTS weddings (id text PRIMARY KEY, wedding_date date, tz text, region text)',
    );
    await c.query(
      `INSERT INTO weddings SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[])`,
      [
        weddings.map((w) => w.id),
        weddings.map((w) => w.date),
        weddings.map((w) => w.tz ?? null),
        weddings.map((w) => w.region ?? null),
      ],
    );
  } finally {
    await c.end();
  }
}

export interface TestPoint {
  weddingId: string | null;
  type: 'full' | 'incremental' | 'files';
  at: Date;
  verified?: boolean;
}

/** Recovery points (with their operations, and a verified replica when asked) as a backup would leave them. */
export async function insertPoints(db: pg.Pool, points: TestPoint[]): Promise<void> {
  if (points.length === 0) return;
  const ops = points.map(() => randomUUID());
  const ids = points.map(() => randomUUID().replace(/-/g, ''));
  const comps = points.map((p) => (p.type === 'files' ? '["files"]' : '["database"]'));
  await db.query(
    `INSERT INTO backup_operations (id, type, state, priority, wedding_id, components, created_at)
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::text[], $6::jsonb[], $7::timestamptz[])`,
    [
      ops,
      points.map((p) => p.type),
      points.map(() => 'completed'),
      points.map(() => 4),
      points.map((p) => p.weddingId),
      comps,
      points.map((p) => p.at),
    ],
  );
  await db.query(
    `INSERT INTO recovery_points (id, operation_id, type, wedding_id, primary_target, created_at, consistent_time, checksum)
     SELECT i, o, t, w, 'local-primary', a, a, 'x' FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[]) AS u(i, o, t, w, a)`,
    [ids, ops, points.map((p) => p.type), points.map((p) => p.weddingId), points.map((p) => p.at)],
  );
  const verified = ids.filter((_, i) => points[i]!.verified);
  if (verified.length)
    await db.query(
      `INSERT INTO replicas (recovery_point_id, target, state, verified_at) SELECT i, 'local-primary', 'verified', now() FROM unnest($1::text[]) AS i`,
      [verified],
    );
}
