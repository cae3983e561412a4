// Tables that reach their wedding only through foreign keys are cut per wedding, sealed under its
// key, reused by incrementals, and a one-wedding restore brings exactly that wedding's rows in
// every one of them, with the foreign keys valid.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { weddingScope } from '../../src/engine/api.js';
import { backupPostgres } from '../../src/engine/postgres/backup.js';
import { restorePostgres } from '../../src/engine/postgres/restore.js';
import { readRecords } from '../../src/engine/repo/records.js';
import { Repository } from '../../src/engine/repo/repository.js';
import type { PgTree, Segment } from '../../src/engine/tree.js';
import { ConflictError } from '../../src/errors.js';
import { LocalStorage } from '../../src/storage/local.js';
import { createTempDatabase, PG_ADMIN_URL, query, type TempDatabase } from '../helpers/pg.js';
import { createTenancySchema } from '../helpers/tenancy-schema.js';

const dir = mkdtempSync(path.join(tmpdir(), 'wv-tenancy-restore-'));
const masterKey = randomBytes(32);
const dbs: TempDatabase[] = [];
let source: TempDatabase;
let repo: Repository;

// more rows than the schema's own: notes two hops away, seats on a composite key, a guest of
// wedding 1 whose plus-one is a guest of wedding 2 (a nullable cross-wedding reference)
const EXTRA = `
INSERT INTO app.guests (wedding_id, name, plus_one_of) VALUES (1, 'dee', 3);
INSERT INTO app.rsvp_answers (guest_id, answer) VALUES (2, 'maybe'), (4, 'yes');
INSERT INTO app.answer_notes (answer_id) VALUES (1), (2), (3);
INSERT INTO app.tables VALUES (1, 1), (1, 2), (2, 1);
INSERT INTO app."Seating" ("Wedding Ref", table_no) VALUES (1, 1), (1, 2), (2, 1);
INSERT INTO public.suppliers VALUES (7, 'florist');
INSERT INTO public.bookings (vendor_id, guest_id) VALUES (7, 1), (7, 3);
INSERT INTO app.rsvp_events VALUES (3, 4, '2026-05-01');
`;

/** Each wedding-scoped table's rows of one wedding, as the source resolves them through its keys. */
const OWN: Record<string, string> = {
  'app."Weddings"': `FROM app."Weddings" x WHERE x.id = $1`,
  'app.guests': `FROM app.guests x WHERE x.wedding_id = $1`,
  'app.rsvp_answers': `FROM app.rsvp_answers x JOIN app.guests g USING (guest_id) WHERE g.wedding_id = $1`,
  'app.answer_notes': `FROM app.answer_notes x JOIN app.rsvp_answers a USING (answer_id)
                         JOIN app.guests g ON g.guest_id = a.guest_id WHERE g.wedding_id = $1`,
  'app.tables': `FROM app.tables x WHERE x.wedding_id = $1`,
  'app."Seating"': `FROM app."Seating" x WHERE x."Wedding Ref" = $1`,
  'app.rsvp_events': `FROM app.rsvp_events x JOIN app.guests g USING (guest_id) WHERE g.wedding_id = $1`,
  'public.bookings': `FROM public.bookings x JOIN app.guests g USING (guest_id) WHERE g.wedding_id = $1`,
  // mixed: the wedding's rows and the platform's (no guest)
  'public.photos': `FROM public.photos x LEFT JOIN app.guests g USING (guest_id)
                      WHERE g.wedding_id = $1 OR x.guest_id IS NULL`,
};
const PLATFORM = ['public.settings', 'public.suppliers', 'public.a', 'public.b'];

const rowsOf = async (url: string, from: string, params: unknown[] = []) =>
  (await query<{ r: string }>(url, `SELECT row_to_json(x)::text AS r ${from} ORDER BY 1`, params)).map(
    (x) => x.r,
  );
const whole = (t: string) => `FROM ${t} x`;

beforeAll(async () => {
  source = await createTempDatabase('tenancy_restore');
  await createTenancySchema(source.url);
  await query(source.url, EXTRA);
  repo = await Repository.init(new LocalStorage('tenancy-restore', dir), masterKey);
});

afterAll(async () => {
  for (const d of [source, ...dbs]) await d?.drop();
  rmSync(dir, { recursive: true, force: true });
});

async function backup(parent?: PgTree, changeSlot = false): Promise<PgTree> {
  const w = repo.writer();
  const tree = await backupPostgres(w, {
    url: source.url,
    tenantKey: 'wedding_id',
    supplierKey: 'supplier_id',
    ceremonyDate: { schema: 'app', table: 'Weddings', column: 'Ceremony Date' },
    changeSlot,
    parent,
  });
  await w.flush();
  await w.close();
  return tree;
}

async function restoreWedding(tree: PgTree, wedding: string) {
  const target = await createTempDatabase(`tenancy_w${wedding}`, { create: false });
  dbs.push(target);
  const result = await restorePostgres(repo.reader(), tree, { targetUrl: target.url, wedding });
  return { target, result };
}

const segmentsOf = async (tree: PgTree, name: string): Promise<Segment[]> => {
  const t = tree.tables.find((x) => x.name === name)!;
  const out: Segment[] = [];
  for await (const s of readRecords<Segment>(repo.reader(), t.segmentList!)) out.push(s);
  return out;
};

let full: PgTree;

it('cuts a table reached through foreign keys per wedding, under each wedding’s key', async () => {
  full = await backup();
  const answers = await segmentsOf(full, 'rsvp_answers');
  expect(answers.map((s) => [s.tenant, s.rows])).toEqual([
    ['1', 3],
    ['2', 1],
  ]);
  expect(answers.map((s) => s.scope)).toEqual([weddingScope('1'), weddingScope('2')]);
  // two hops away, and a composite key that carries the wedding along
  expect((await segmentsOf(full, 'answer_notes')).map((s) => s.tenant)).toEqual(['1', '2']);
  expect((await segmentsOf(full, 'Seating')).map((s) => s.tenant)).toEqual(['1', '2']);
  // a mixed table: rows without a guest are the platform's
  const photos = await segmentsOf(full, 'photos');
  expect(photos.map((s) => [s.tenant, s.scope])).toEqual([
    ['1', weddingScope('1')],
    [null, 'platform'],
  ]);
}, 60_000);

it('restores one wedding exactly, FK-reached tables included, and nulls a reference to another wedding', async () => {
  const { target, result } = await restoreWedding(full, '1');
  for (const [table, from] of Object.entries(OWN)) {
    if (table === 'app.guests') continue;
    expect(await rowsOf(target.url, whole(table)), table).toEqual(await rowsOf(source.url, from, [1]));
  }
  for (const table of PLATFORM)
    expect(await rowsOf(target.url, whole(table)), table).toEqual(await rowsOf(source.url, whole(table)));
  // dee's plus-one is a guest of wedding 2: not in this database, so the reference is cleared
  expect(await rowsOf(target.url, whole('app.guests'))).toEqual(
    await rowsOf(
      source.url,
      `FROM (SELECT guest_id, wedding_id, CASE WHEN guest_id = 4 THEN NULL ELSE plus_one_of END AS plus_one_of, name
               FROM app.guests) x WHERE x.wedding_id = $1`,
      [1],
    ),
  );
  expect(result.nulledReferences).toEqual([
    {
      table: 'app.guests',
      constraint: 'guests_plus_one_of_fkey',
      references: 'app.guests (guest_id)',
      rows: 1,
      sample: ['(4) → (3)'],
    },
  ]);
  // every foreign key is there and valid
  const keys = `SELECT conname AS r FROM pg_constraint x WHERE contype = 'f' AND convalidated`;
  expect(await rowsOf(target.url, `FROM (${keys}) x`)).toEqual(await rowsOf(source.url, `FROM (${keys}) x`));

  const other = await restoreWedding(full, '2');
  expect(await rowsOf(other.target.url, whole('app.rsvp_answers'))).toEqual(
    await rowsOf(source.url, OWN['app.rsvp_answers']!, [2]),
  );
  expect(other.result.nulledReferences).toBeUndefined();
}, 120_000);

it('replaces one wedding in a live database, FK-reached rows first out and last in', async () => {
  const live = await createTempDatabase('tenancy_live', { create: false });
  dbs.push(live);
  await restorePostgres(repo.reader(), full, { targetUrl: live.url });
  await query(
    live.url,
    `DELETE FROM app.answer_notes; UPDATE app.rsvp_answers SET answer = 'lost';
     DELETE FROM app."Seating" WHERE "Wedding Ref" = 1`,
  );
  const result = await restorePostgres(repo.reader(), full, {
    targetUrl: live.url,
    wedding: '1',
    overwrite: true,
  });
  // wedding 2 is live here, so dee's plus-one stays
  expect(result.nulledReferences).toBeUndefined();
  for (const [table, from] of Object.entries(OWN))
    expect(await rowsOf(live.url, from, [1]), table).toEqual(await rowsOf(source.url, from, [1]));
  // wedding 2's rows are as the live database had them
  expect(await rowsOf(live.url, OWN['app.rsvp_answers']!, [2])).toEqual([
    expect.stringContaining('"answer":"lost"'),
  ]);
  expect(await rowsOf(live.url, OWN['app.answer_notes']!, [2])).toEqual([]);
}, 120_000);

it('an incremental reuses FK-reached tables, and moves the rows of a guest moved to another wedding', async () => {
  const base = await backup(undefined, true);
  const same = await backup(base, true);
  expect(same.tables.find((t) => t.name === 'rsvp_answers')!.reused).toBe(true);

  // cy (wedding 2) moves to wedding 1: the answers, notes and events below follow, unchanged themselves
  await query(source.url, `UPDATE app.guests SET wedding_id = 1 WHERE guest_id = 3`);
  const moved = await backup(same, true);
  const answers = moved.tables.find((t) => t.name === 'rsvp_answers')!;
  expect(answers.reused).toBeFalsy();
  expect(answers.deltas?.length).toBe(1);
  const one = await restoreWedding(moved, '1');
  const two = await restoreWedding(moved, '2');
  for (const table of ['app.rsvp_answers', 'app.answer_notes', 'app.rsvp_events', 'public.bookings']) {
    expect(await rowsOf(one.target.url, whole(table)), table).toEqual(
      await rowsOf(source.url, OWN[table]!, [1]),
    );
    expect(await rowsOf(two.target.url, whole(table)), table).toEqual([]);
  }
  await query(source.url, `UPDATE app.guests SET wedding_id = 2 WHERE guest_id = 3`);
}, 180_000);

it('refuses a one-wedding restore whose rows hold a NOT NULL reference to another wedding, listing it', async () => {
  await query(
    source.url,
    `CREATE TABLE app.guest_links (link_id int PRIMARY KEY, guest_id bigint NOT NULL REFERENCES app.guests,
       other_guest bigint NOT NULL REFERENCES app.guests);
     INSERT INTO app.guest_links VALUES (1, 1, 2), (2, 1, 3)`,
  );
  const tree = await backup();
  const target = await createTempDatabase('tenancy_refused', { create: false });
  dbs.push(target);
  const err = await restorePostgres(repo.reader(), tree, { targetUrl: target.url, wedding: '1' }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConflictError);
  // the database the restore created is gone again
  expect(await query(PG_ADMIN_URL, 'SELECT 1 FROM pg_database WHERE datname = $1', [target.name])).toEqual(
    [],
  );
  expect((err as Error).message).toContain(
    'app.guest_links guest_links_other_guest_fkey → app.guests (guest_id): 1 rows ((2) → (3))',
  );
  await query(source.url, 'DROP TABLE app.guest_links');
}, 120_000);
