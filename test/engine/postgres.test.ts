import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDatabase } from '../../src/catalog/db.js';
import { Repository } from '../../src/engine/repo/repository.js';
import { restorePostgres } from '../../src/engine/restore-postgres.js';
import { backupPostgres, type PgTree } from '../../src/engine/sources/postgres.js';
import { ConflictError } from '../../src/errors.js';
import { seedDatabase } from '../../src/seed/database.js';
import { LocalStorage } from '../../src/storage/local.js';
import { dbUrl, dropDatabase } from '../helpers/service.js';

const id = randomBytes(4).toString('hex');
const created: string[] = [];
const db = (suffix: string) => {
  const name = `wv_test_pg_${suffix}_${id}`;
  created.push(name);
  return dbUrl(name);
};
const settings = { tenantKey: 'wedding_id', ceremonyDate: 'weddings.wedding_date' };
let repo: Repository;

async function query<T extends pg.QueryResultRow>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** One digest per table over every row's text form, order-independent of storage. */
async function tableDigests(url: string): Promise<Record<string, string>> {
  const tables = await query<{ t: string }>(
    url,
    `SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables
      WHERE schemaname NOT IN ('pg_catalog','information_schema') ORDER BY 1`,
  );
  const out: Record<string, string> = {};
  for (const { t } of tables) {
    const [r] = await query<{ d: string; n: string }>(
      url,
      `SELECT md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) AS d, count(*)::text AS n FROM ${t} x`,
    );
    out[t] = `${r!.n}:${r!.d}`;
  }
  return out;
}

function dataDump(url: string): string {
  return execFileSync('pg_dump', ['--data-only', '--no-owner', '-d', url], { maxBuffer: 1 << 30 })
    .toString()
    .split('\n')
    .filter((l) => !l.startsWith('--') && !l.startsWith('\\restrict') && !l.startsWith('\\unrestrict'))
    .sort() // physical row order may differ after a restore; the rows may not
    .join('\n');
}

async function schemaObjects(url: string): Promise<string[]> {
  const rows = await query<{ o: string }>(
    url,
    `SELECT conname || ':' || contype::text AS o FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
      WHERE n.nspname = 'public'
     UNION ALL SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1`,
  );
  return rows.map((r) => r.o);
}

async function backup(url: string): Promise<PgTree> {
  const w = repo.writer();
  const tree = await backupPostgres(w, { url, ...settings });
  await w.flush();
  await w.close();
  return tree;
}

beforeAll(async () => {
  repo = await Repository.init(
    new LocalStorage('pg-test', mkdtempSync(path.join(tmpdir(), 'wv-pg-repo-'))),
    randomBytes(32),
  );
});

afterAll(async () => {
  for (const name of created) await dropDatabase(name);
});

describe('the seeded wedding database', () => {
  const source = db('seed');
  let tree: PgTree;

  beforeAll(async () => {
    await seedDatabase(source, { scale: 0.003 });
    tree = await backup(source);
  });

  it('records every table with its row count, digest and tenant column', async () => {
    const guests = tree.tables.find((t) => t.name === 'guests')!;
    const [{ n }] = (await query<{ n: string }>(source, 'SELECT count(*)::text AS n FROM guests')) as [
      { n: string },
    ];
    expect(guests.rowCount).toBe(Number(n));
    expect(guests.tenantColumn).toBe('wedding_id');
    expect(guests.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(tree.tables.find((t) => t.name === 'weddings')!.tenantColumn).toBe('wedding_id');
    expect(tree.tables.find((t) => t.name === 'suppliers')!.scopeKind).toBe('platform');
    expect(tree.tenants.length).toBeGreaterThan(10);
  });

  it('never puts two weddings in one segment', async () => {
    const reader = repo.reader();
    for (const t of tree.tables.filter((x) => x.tenantColumn)) {
      const col = t.columns.findIndex((c) => c.name === t.tenantColumn);
      for (const seg of t.segments) {
        expect(seg.scope).toBe(seg.tenant === null ? 'platform' : `wedding:${seg.tenant}`);
        const text = (await reader.readBuffer(seg.ref)).toString('utf8');
        const tenants = new Set(
          text
            .split('\n')
            .filter(Boolean)
            .map((row) => row.split('\t')[col]),
        );
        expect([...tenants]).toEqual([seg.tenant]);
      }
    }
  });

  it('restores the whole database exactly, with indexes and constraints', async () => {
    const target = db('seed_restore');
    const r = await restorePostgres(repo.reader(), tree, { targetUrl: target });
    expect(r.tables).toBe(tree.tables.length);
    expect(await tableDigests(target)).toEqual(await tableDigests(source));
    expect(dataDump(target)).toBe(dataDump(source));
    expect(await schemaObjects(target)).toEqual(await schemaObjects(source));
    // sequences continue where they were
    const [a] = await query<{ v: string }>(source, `SELECT last_value::text AS v FROM guests_guest_id_seq`);
    const [b] = await query<{ v: string }>(target, `SELECT last_value::text AS v FROM guests_guest_id_seq`);
    expect(b).toEqual(a);
  });

  it('refuses to overwrite a database that holds tables, unless told to', async () => {
    const target = db('seed_restore');
    await expect(restorePostgres(repo.reader(), tree, { targetUrl: target })).rejects.toBeInstanceOf(
      ConflictError,
    );
    await restorePostgres(repo.reader(), tree, { targetUrl: target, overwrite: true });
    expect(await tableDigests(target)).toEqual(await tableDigests(source));
  });

  it('restores one wedding alone: exactly its rows in every table carrying its tenant key', async () => {
    const wedding = tree.tenants[3]!.id;
    const target = db('one_wedding');
    await restorePostgres(repo.reader(), tree, { targetUrl: target, wedding });
    for (const t of tree.tables) {
      const rows = await query<{ d: string }>(
        target,
        `SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) AS d FROM ${pg.escapeIdentifier(t.name)} x`,
      );
      // shared (platform) tables come whole, so the wedding's references hold
      const where =
        t.scopeKind === 'wedding' ? `WHERE x.${pg.escapeIdentifier(t.tenantColumn!)}::text = $1` : '';
      const expected = await query<{ d: string }>(
        source,
        `SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) AS d FROM ${pg.escapeIdentifier(t.name)} x ${where}`,
        t.scopeKind === 'wedding' ? [wedding] : [],
      );
      expect(rows, t.name).toEqual(expected);
    }
    const sql = new PassThrough();
    const parts: Buffer[] = [];
    sql.on('data', (d: Buffer) => parts.push(d));
    const r = await restorePostgres(repo.reader(), tree, { wedding, asSql: sql });
    expect(r.rows).toBeGreaterThan(100);
    expect(Buffer.concat(parts).toString()).toContain('COPY "public"."guests"');
  });
});

describe('a schema with every awkward type', () => {
  const source = db('types');

  beforeAll(async () => {
    await ensureDatabase(source);
    await query(
      source,
      `CREATE TYPE mood AS ENUM ('calm', 'nervous', 'ecstatic');
       CREATE TABLE weddings (id text PRIMARY KEY, wedding_date date NOT NULL);
       CREATE TABLE things (
         thing_id serial PRIMARY KEY, wedding_id text REFERENCES weddings, j jsonb, b bytea, arr int[], tarr text[],
         n numeric(30,10), m mood, ts timestamptz, t text, f float8, big bigint, iv interval, u uuid
       );
       CREATE TABLE settings (k text, v text);
       INSERT INTO weddings VALUES ('w-1', '2027-06-01'), ('w-2', '2027-07-01'), ('tab\\there', '2027-08-01');
       INSERT INTO things (wedding_id, j, b, arr, tarr, n, m, ts, t, f, big, iv, u) VALUES
         ('w-1', '{"a": [1, 2, {"ü": null}]}', '\\x00ff0a0d5c09', '{1,NULL,3}', '{"a b","c\\"d",NULL,"e,f"}',
          12345678901234567890.0123456789, 'ecstatic', '2027-06-01 14:00:00+02', E'line1\\nline2\\ttab\\\\ back ✓ 日本語',
          'NaN', -9223372036854775808, '1 year 2 mons 3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
         ('w-2', 'null', '', '{}', '{}', -0.0000000001, 'calm', '-infinity', '', 1e308, 0, '-1 day', NULL),
         (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
         ('tab\\there', '{}', '\\x', NULL, NULL, 0, 'nervous', 'infinity', E'\\\\N', '-Infinity', 1, '0', NULL);
       INSERT INTO settings VALUES ('a', '1'), ('a', '1'), (NULL, NULL), ('ß', 'Ω');`,
    );
  });

  it('round-trips jsonb, bytea, arrays, numeric, enums, timestamptz, NULLs, non-ASCII and tables without keys', async () => {
    const tree = await backup(source);
    const things = tree.tables.find((t) => t.name === 'things')!;
    expect(things.segments.map((s) => s.tenant)).toEqual(
      ['tab\\there', 'w-1', 'w-2', null].sort((a, b) => (a === null ? 1 : b === null ? -1 : a < b ? -1 : 1)),
    );
    const target = db('types_restore');
    await restorePostgres(repo.reader(), tree, { targetUrl: target });
    expect(await tableDigests(target)).toEqual(await tableDigests(source));
    expect(dataDump(target)).toBe(dataDump(source));
  });
});
