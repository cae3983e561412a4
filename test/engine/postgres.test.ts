import { execFileSync } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContentReader, ContentRef, ContentWriter } from '../../src/engine/api.js';
import { restorePostgres } from '../../src/engine/postgres/restore.js';
import { backupPostgres } from '../../src/engine/postgres/backup.js';
import type { PgTree } from '../../src/engine/tree.js';
import { ConflictError } from '../../src/errors.js';
import { seedDatabase } from '../../src/seed/database.js';
import { segmentsOf } from '../helpers/memory-content.js';
import {
  createTempDatabase,
  dataDump,
  query,
  schemaObjects,
  tableDigests,
  type TempDatabase,
} from '../helpers/pg.js';
import { repoBackups } from '../helpers/pg-repo.js';
import { tableLabel } from '../../src/engine/postgres/tenancy.js';
import { expectOneWedding, rowsDigest, schemaTables, weddingDigests } from '../helpers/wedding-rows.js';

const settings = { tenantKey: 'wedding_id', ceremonyDate: { table: 'weddings', column: 'wedding_date' } };
const temps: TempDatabase[] = [];
async function temp(label: string, create = false): Promise<TempDatabase> {
  const d = await createTempDatabase(`pg_${label}`, { create });
  temps.push(d);
  return d;
}
const repos = repoBackups('pg');
afterAll(async () => {
  for (const d of temps) await d.drop();
  repos.cleanup();
});

/** A backup into a real repository on disk, its tree read back from the saved snapshot. */
async function backup(url: string): Promise<{ tree: PgTree; store: ContentReader }> {
  const { tree, reader } = await repos.backup({ url, ...settings });
  return { tree, store: reader };
}

/** The tables' wedding columns as the schema gives them (see schemaTables), by `schema.name`. */
async function tenantColumns(url: string): Promise<Record<string, string | undefined>> {
  return Object.fromEntries((await schemaTables(url)).map((t) => [t.name, t.tenantColumn]));
}

describe('the seeded wedding database', () => {
  let source: TempDatabase;
  let tree: PgTree;
  let store: ContentReader;

  beforeAll(async () => {
    source = await temp('seed');
    await seedDatabase(source.url, { scale: 0.005 });
    ({ tree, store } = await backup(source.url));
  }, 120_000);

  it('records every table with its columns, keys, row count, digest and tenant column', async () => {
    const publicTables = [
      'bookings',
      'contracts',
      'couples',
      'guests',
      'payments',
      'portfolio_items',
      'rsvps',
    ]
      .concat(['suppliers', 'timeline_events', 'venues', 'weddings'])
      .map((t) => `public.${t}`);
    // a partitioned table once, by its root
    const appTables = ['DietaryNotes', 'gift_registry', 'guest_messages', 'menu_choices'].map(
      (t) => `app.${t}`,
    );
    expect(tree.tables.map((t) => `${t.schema}.${t.name}`).sort()).toEqual(
      publicTables.concat(appTables).sort(),
    );
    for (const t of tree.tables) {
      const [{ n }] = (await query<{ n: number }>(
        source.url,
        `SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(t.schema)}.${pg.escapeIdentifier(t.name)}`,
      )) as [{ n: number }];
      expect(t.rowCount, t.name).toBe(n);
      expect((await segmentsOf(store, t)).reduce((s, x) => s + x.rows, 0)).toBe(n);
      expect(t.digest).toMatch(/^[0-9a-f]{64}$/);
      // segments live in the table's record list, not in the tree
      expect(t.segments).toBeUndefined();
      expect(t.segmentList).toMatchObject({ scope: 'platform', records: true });
    }
    // each table's wedding column is the one the schema gives it (none for shared tables)
    const fromSchema = await tenantColumns(source.url);
    expect(Object.fromEntries(tree.tables.map((t) => [`${t.schema}.${t.name}`, t.tenantColumn]))).toEqual(
      fromSchema,
    );
    const guests = tree.tables.find((t) => t.name === 'guests')!;
    expect(guests.tenantColumn).toBe('wedding_id');
    expect(guests.primaryKey).toEqual(['guest_id']);
    expect(guests.columns[0]).toEqual({ name: 'guest_id', type: 'bigint' });
    expect(tree.tables.find((t) => t.name === 'weddings')!.tenantColumn).toBe('wedding_id');
    expect(tree.tables.find((t) => t.name === 'suppliers')!.scopeKind).toBe('platform');
    expect(tree.tenants).toHaveLength(100);
    expect(tree.tenants[0]!.ceremonyDate).toMatch(/^\d{4}-\d\d-\d\d$/);
    expect(tree.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    // referenced tables come before the tables that refer to them
    const at = (n: string) => tree.tables.findIndex((t) => t.name === n);
    expect(at('weddings')).toBeLessThan(at('guests'));
    expect(at('guests')).toBeLessThan(at('rsvps'));
  });

  it('never puts two weddings in one segment, and each segment goes to its wedding scope', async () => {
    for (const t of tree.tables.filter((x) => x.tenantColumn)) {
      const col = t.columns.findIndex((c) => c.name === t.tenantColumn);
      const seen = new Set<string | null>();
      for (const seg of await segmentsOf(store, t)) {
        expect(seg.scope).toBe(seg.tenant === null ? 'platform' : `wedding:${seg.tenant}`);
        const rows = (await store.readBuffer!(seg.ref)).toString('utf8').split('\n').filter(Boolean);
        expect(rows).toHaveLength(seg.rows);
        expect(new Set(rows.map((r) => r.split('\t')[col]))).toEqual(new Set([seg.tenant]));
        expect(seen.has(seg.tenant), `${t.name}: wedding ${seg.tenant} split in two`).toBe(false);
        seen.add(seg.tenant);
      }
    }
    // a table reaching its wedding through foreign keys: each segment holds the rows the source
    // resolves to that wedding (a few weddings checked), and its platform rows (NULL) come last
    const schema = new Map((await schemaTables(source.url)).map((t) => [t.name, t]));
    for (const t of tree.tables.filter((x) => x.tenantVia)) {
      const segs = await segmentsOf(store, t);
      const tenants = segs.map((s) => s.tenant);
      expect(new Set(tenants).size, `${t.name}: a wedding split in two`).toBe(tenants.length);
      for (const seg of segs)
        expect(seg.scope).toBe(seg.tenant === null ? 'platform' : `wedding:${seg.tenant}`);
      const resolved = schema.get(tableLabel(t))!;
      for (const seg of segs.filter((s) => s.tenant !== null).slice(0, 3)) {
        const [row] = await query<{ n: number }>(
          source.url,
          `SELECT count(*)::int AS n FROM ${resolved.name} x WHERE (${resolved.tenant})::text = $1`,
          [seg.tenant],
        );
        expect(seg.rows, `${t.name} wedding ${seg.tenant}`).toBe(row!.n);
      }
    }
    expect(
      tree.tables
        .filter((x) => x.tenantVia)
        .map((t) => tableLabel(t))
        .sort(),
    ).toEqual(['app."DietaryNotes"', 'app.gift_registry', 'app.guest_messages', 'app.menu_choices']);
    for (const t of tree.tables.filter((x) => x.scopeKind === 'platform')) {
      expect((await segmentsOf(store, t)).map((s) => s.scope)).toEqual(['platform']);
    }
  });

  it('restores the whole database exactly, with indexes, constraints and sequences', async () => {
    const target = await temp('seed_restore');
    const r = await restorePostgres(store, tree, { targetUrl: target.url });
    expect(r.tables).toBe(tree.tables.length);
    expect(await tableDigests(target.url)).toEqual(await tableDigests(source.url));
    expect(dataDump(target.url)).toBe(dataDump(source.url));
    expect(await schemaObjects(target.url)).toEqual(await schemaObjects(source.url));
    expect((await schemaObjects(target.url)).length).toBeGreaterThan(25);
    const seq = 'SELECT last_value::text AS v FROM guests_guest_id_seq';
    expect(await query(target.url, seq)).toEqual(await query(source.url, seq));
    // loaded with COPY FREEZE into the tables the restore made: every page is frozen already
    await query(target.url, 'CREATE EXTENSION IF NOT EXISTS pg_visibility');
    const frozen = await query<{ pages: number; thawed: number }>(
      target.url,
      `SELECT count(*)::int AS pages, (count(*) FILTER (WHERE NOT all_frozen))::int AS thawed
         FROM pg_visibility_map('guests')`,
    );
    expect(frozen[0]!.pages).toBeGreaterThan(0);
    expect(frozen[0]!.thawed).toBe(0);
  });

  it('refuses to overwrite a database that holds tables, unless told to', async () => {
    const target = await temp('seed_refuse', true);
    await query(target.url, 'CREATE TABLE precious (x int); INSERT INTO precious VALUES (1)');
    await expect(restorePostgres(store, tree, { targetUrl: target.url })).rejects.toBeInstanceOf(
      ConflictError,
    );
    expect(await query(target.url, 'SELECT x FROM precious')).toEqual([{ x: 1 }]);
    await restorePostgres(store, tree, { targetUrl: target.url, overwrite: true });
    expect(await tableDigests(target.url)).toEqual(await tableDigests(source.url));
  });

  it('restores one wedding alone into a new database: its rows and the shared tables', async () => {
    const wedding = tree.tenants[3]!.id;
    const target = await temp('one_wedding');
    const r = await restorePostgres(store, tree, { targetUrl: target.url, wedding });
    expect(r.rows).toBeGreaterThan(100);
    await expectOneWedding(target.url, wedding, source.url);
    expect(await schemaObjects(target.url)).toEqual(await schemaObjects(source.url));
  });

  it('puts one wedding back into a live database in one transaction, replacing it only when told to', async () => {
    const target = await temp('live');
    await restorePostgres(store, tree, { targetUrl: target.url });
    const wedding = tree.tenants[7]!.id;
    await query(target.url, `UPDATE guests SET full_name = 'changed' WHERE wedding_id = $1`, [wedding]);
    await query(target.url, `DELETE FROM rsvps WHERE wedding_id = $1`, [wedding]);
    const before = await tableDigests(target.url);
    await expect(restorePostgres(store, tree, { targetUrl: target.url, wedding })).rejects.toBeInstanceOf(
      ConflictError,
    );
    expect(await tableDigests(target.url)).toEqual(before); // rolled back
    await restorePostgres(store, tree, { targetUrl: target.url, wedding, overwrite: true });
    expect(await tableDigests(target.url)).toEqual(await tableDigests(source.url));
  });

  it('writes one wedding as an SQL script that psql applies', async () => {
    const [a, b] = [tree.tenants[10]!.id, tree.tenants[11]!.id];
    const target = await temp('sql');
    await restorePostgres(store, tree, { targetUrl: target.url, wedding: a });
    const out = new PassThrough();
    const parts: Buffer[] = [];
    out.on('data', (d: Buffer) => parts.push(d));
    const r = await restorePostgres(store, tree, { wedding: b, asSql: out });
    const sql = Buffer.concat(parts).toString();
    expect(sql).toContain('COPY "public"."guests"');
    // every table of a wedding, those reaching it through foreign keys included
    expect(r.tables).toBe((await schemaTables(source.url)).filter((t) => t.tenant).length);
    execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', target.url], { input: sql });
    for (const t of (await schemaTables(source.url)).filter((x) => x.tenant)) {
      expect(await rowsDigest(target.url, t, b), t.name).toBe(await rowsDigest(source.url, t, b));
      expect(await rowsDigest(target.url, t, a), t.name).toBe(await rowsDigest(source.url, t, a));
    }
  });

  it('reads snapshots that hold the segments inline (before record lists) the same way', async () => {
    const inline: PgTree = {
      ...tree,
      tables: await Promise.all(
        tree.tables.map(async (t) => {
          const { segmentList: _list, ...rest } = t;
          return { ...rest, segments: await segmentsOf(store, t) };
        }),
      ),
    };
    expect(inline.tables.every((t) => t.segments && !t.segmentList)).toBe(true);
    expect(inline.tables.filter((t) => t.segments!.length > 0)).not.toHaveLength(0);
    const script = async (t: PgTree) => {
      const out = new PassThrough();
      const parts: Buffer[] = [];
      out.on('data', (d: Buffer) => parts.push(d));
      const r = await restorePostgres(store, t, { asSql: out });
      return { r, sql: Buffer.concat(parts).toString() };
    };
    const [lists, old] = [await script(tree), await script(inline)];
    expect(old.sql).toBe(lists.sql);
    expect(old.r).toEqual(lists.r);
    expect(lists.r.rows).toBe(tree.tables.reduce((n, t) => n + t.rowCount, 0));
  });
});

describe('a schema with every awkward type', () => {
  let source: TempDatabase;

  beforeAll(async () => {
    source = await temp('types', true);
    await query(
      source.url,
      `CREATE TYPE mood AS ENUM ('calm', 'nervous', 'ecstatic');
       CREATE SCHEMA "Odd Schema";
       CREATE TABLE weddings (id text PRIMARY KEY, wedding_date date NOT NULL);
       CREATE TABLE things (
         thing_id serial PRIMARY KEY, wedding_id text REFERENCES weddings, j jsonb, b bytea, arr int[], tarr text[],
         n numeric(30,10), m mood, ts timestamptz, t text, f float8, big bigint, iv interval, u uuid,
         x xml, p point, r tstzrange
       );
       CREATE INDEX things_j ON things USING gin (j);
       CREATE TABLE settings (k text, v text);
       CREATE TABLE "Odd Schema"."Mixed ""Case"" Table" ("Wedding Id" text, wedding_id text, "select" int PRIMARY KEY);
       CREATE TABLE events (wedding_id text NOT NULL, at date NOT NULL, what text, PRIMARY KEY (wedding_id, at))
         PARTITION BY RANGE (at);
       CREATE TABLE events_2027 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
       CREATE TABLE events_rest PARTITION OF events DEFAULT;
       CREATE TABLE log (wedding_id text, line text); -- no primary key, but a tenant
       INSERT INTO weddings VALUES ('w-1', '2027-06-01'), ('w-2', '2027-07-01'), (E'tab\\there', '2027-08-01'),
         ('back\\slash', '2027-09-01'), ('Zoë ✓', '2027-10-01');
       INSERT INTO things (wedding_id, j, b, arr, tarr, n, m, ts, t, f, big, iv, u, x, p, r) VALUES
         ('w-1', '{"a": [1, 2, {"ü": null}]}', '\\x00ff0a0d5c09', '{1,NULL,3}', '{"a b","c\\"d",NULL,"e,f"}',
          12345678901234567890.0123456789, 'ecstatic', '2027-06-01 14:00:00+02', E'line1\\nline2\\ttab\\\\ back ✓ 日本語',
          'NaN', -9223372036854775808, '1 year 2 mons 3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
          '<a>ü</a>', '(1.5,-2)', '[2027-06-01 10:00+00,2027-06-01 18:00+00)'),
         ('w-2', 'null', '', '{}', '{}', -0.0000000001, 'calm', '-infinity', '', 1e308, 0, '-1 day', NULL, NULL, NULL, 'empty'),
         (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
         (E'tab\\there', '{}', '\\x', NULL, NULL, 0, 'nervous', 'infinity', E'\\\\N', '-Infinity', 1, '0', NULL, NULL, NULL, NULL),
         ('back\\slash', '[]', '\\x5c4e', '{{1,2},{3,4}}', '{"\\\\N"}', 1e-20, 'calm', now(), E'\\r\\n', 0.1, 2, '1 sec', NULL, NULL, NULL, NULL),
         ('Zoë ✓', '"🎉"', '\\xdeadbeef', NULL, '{Ω}', 42, 'calm', '2000-01-01', 'Łódź', -0.0, 3, NULL, NULL, NULL, NULL, NULL);
       INSERT INTO settings VALUES ('a', '1'), ('a', '1'), (NULL, NULL), ('ß', 'Ω');
       INSERT INTO "Odd Schema"."Mixed ""Case"" Table" VALUES ('x', 'w-1', 1), (NULL, 'w-2', 2), ('y', 'w-1', 3);
       INSERT INTO events SELECT w, d, 'event ' || d FROM unnest(ARRAY['w-1','w-2','Zoë ✓']) w,
         generate_series('2026-12-30'::date, '2027-01-03', '1 day') d;
       INSERT INTO log VALUES ('w-2', 'b'), ('w-1', 'a'), ('w-2', 'a'), (NULL, 'platform line'), ('w-1', 'a');`,
    );
  });

  it('round-trips every type, odd names, partitions and tables without keys, exactly', async () => {
    const { tree, store } = await backup(source.url);
    const names = tree.tables.map((t) => `${t.schema}.${t.name}`).sort();
    // a partitioned table is one table (its root), not three
    expect(names).toEqual(
      ['Odd Schema.Mixed "Case" Table', 'public.events', 'public.log', 'public.settings']
        .concat(['public.things', 'public.weddings'])
        .sort(),
    );
    const things = tree.tables.find((t) => t.name === 'things')!;
    expect((await segmentsOf(store, things)).map((s) => s.tenant)).toEqual(
      // COPY order is the server's text collation; NULL sorts last
      (
        await query<{ w: string | null }>(
          source.url,
          'SELECT DISTINCT wedding_id AS w FROM things ORDER BY 1',
        )
      ).map((r) => r.w),
    );
    expect(tree.tables.find((t) => t.name === 'settings')!.scopeKind).toBe('platform');
    expect(
      (
        await segmentsOf(
          store,
          tree.tables.find((t) => t.name === 'log')!,
        )
      ).map((s) => s.scope),
    ).toEqual(['wedding:w-1', 'wedding:w-2', 'platform']);
    expect(tree.tenants.map((t) => t.id)).toContain('tab\there');
    expect(tree.tenants.map((t) => t.id)).toContain('back\\slash');

    const target = await temp('types_restore');
    await restorePostgres(store, tree, { targetUrl: target.url });
    expect(await tableDigests(target.url)).toEqual(await tableDigests(source.url));
    expect(dataDump(target.url)).toBe(dataDump(source.url));
    expect(await schemaObjects(target.url)).toEqual(await schemaObjects(source.url));

    // a backup of the restored copy has the same per-table digests: the bytes are exact
    const { tree: again } = await backup(target.url);
    expect(again.tables.map((t) => [t.name, t.digest])).toEqual(tree.tables.map((t) => [t.name, t.digest]));
  });

  it('restores a wedding whose id needs escaping', async () => {
    const { tree, store } = await backup(source.url);
    for (const wedding of ['tab\there', 'back\\slash', 'Zoë ✓']) {
      const target = await temp('types_one');
      await restorePostgres(store, tree, { targetUrl: target.url, wedding });
      await expectOneWedding(target.url, wedding, await weddingDigests(source.url, wedding));
    }
  });

  it('fails, without hanging, when the writer fails midway', async () => {
    let calls = 0;
    const failing: ContentWriter = {
      stats: { bytesRead: 0, bytesNew: 0, bytesStored: 0, blobsTotal: 0, blobsNew: 0 },
      async write(scope, data): Promise<ContentRef> {
        if (++calls === 5) throw new Error('disk full');
        for await (const chunk of data as Readable) void chunk;
        return { scope, blobs: [], size: 0 };
      },
      async flush() {},
    };
    await expect(backupPostgres(failing, { url: source.url, ...settings, parallel: 1 })).rejects.toThrow(
      'disk full',
    );
  });
});
