import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { postgresSourceSchema } from '../../src/config/schema.js';
import { runBackup } from '../../src/engine/backup.js';
import { Repository } from '../../src/engine/repo/repository.js';
import { snapshotTree } from '../../src/engine/tree.js';
import { ConfigError } from '../../src/errors.js';
import { LocalStorage } from '../../src/storage/local.js';
import { createTempDatabase, query, type TempDatabase } from '../helpers/pg.js';
import { createTenancySchema } from '../helpers/tenancy-schema.js';
import { tempDirsForFile } from '../helpers/temp.js';

const tempDir = tempDirsForFile();

let db: TempDatabase;
const masterKey = randomBytes(32);

beforeAll(async () => {
  db = await createTempDatabase('tenancy_tree');
  await createTenancySchema(db.url);
});

afterAll(async () => {
  await db?.drop();
});

const source = (tenancy: Record<string, unknown> = {}) => ({
  ...postgresSourceSchema.parse({
    ceremonyDate: 'app."Weddings"."Ceremony Date"',
    supplierKey: 'supplier_id',
    tenancy,
  }),
  url: db.url,
  supplierKey: 'supplier_id',
  changeSlot: false,
});

const backup = (storage: LocalStorage, tenancy?: Record<string, unknown>) =>
  runBackup({
    storage,
    masterKey,
    type: 'full',
    components: ['database'],
    operationId: randomBytes(8).toString('hex'),
    sources: { postgres: source(tenancy), files: [] },
  });

async function treeOf(storage: LocalStorage, id: string) {
  const repo = await Repository.open(storage, masterKey);
  return snapshotTree((await repo.loadSnapshot(id)).tree).postgres!;
}

it('records each table’s class and path, and warns of a table that changed class since', async () => {
  const storage = new LocalStorage('tree', await tempDir('wv-tenancy-tree-'));
  const first = await backup(storage);
  expect(first.tenancyChanges).toEqual([]);
  const { tenancy } = await treeOf(storage, first.snapshotId);
  expect(tenancy!['app.rsvp_answers']).toEqual({
    class: 'wedding',
    tenant: 'wedding',
    path: [
      {
        constraint: 'rsvp_answers_guest_id_fkey',
        columns: ['guest_id'],
        to: { schema: 'app', name: 'guests' },
        toColumns: ['guest_id'],
      },
    ],
    end: { schema: 'app', name: 'guests', column: 'wedding_id' },
  });
  expect(tenancy!['app."Seating"']).toMatchObject({
    class: 'wedding',
    path: [{ constraint: 'seating_table_fkey' }],
  });
  expect(tenancy!['app.rsvp_events_2027']).toMatchObject({ class: 'wedding' });
  expect(tenancy!['public.photos']).toMatchObject({ class: 'mixed', tenant: 'wedding' });
  expect(tenancy!['public.settings']).toEqual({ class: 'platform' });
  expect(tenancy!['app.guests']).toEqual({
    class: 'wedding',
    tenant: 'wedding',
    end: { schema: 'app', name: 'guests', column: 'wedding_id' },
  });

  // the answers' key becomes nullable: the answers (and the notes reached through them) turn mixed
  await query(db.url, 'ALTER TABLE app.rsvp_answers ALTER COLUMN guest_id DROP NOT NULL');
  const second = await backup(storage);
  expect(second.tenancyChanges.map((c) => [c.table, c.from, c.to])).toEqual([
    ['app.answer_notes', 'wedding', 'mixed'],
    ['app.rsvp_answers', 'wedding', 'mixed'],
  ]);
  expect(second.tenancyChanges[1]!.now).toBe(
    'mixed (wedding where set) via rsvp_answers_guest_id_fkey → app.guests.wedding_id',
  );
  const third = await backup(storage);
  expect(third.tenancyChanges).toEqual([]);
  await query(db.url, 'ALTER TABLE app.rsvp_answers ALTER COLUMN guest_id SET NOT NULL');
}, 120_000);

it('stops at a bad override before anything is written', async () => {
  const dir = await tempDir('wv-tenancy-bad-');
  const storage = new LocalStorage('bad', dir);
  for (const [tenancy, message] of [
    [{ 'app.missing': 'platform' }, '"app.missing": no such table'],
    [{ 'app.guests': { via: 'nope_fkey' } }, 'no foreign key "nope_fkey" on app.guests'],
    [{ 'public.a': { via: 'a_b_fkey' } }, '"public.a": a_b_fkey does not reach'],
  ] as const) {
    const err = await backup(storage, tenancy).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, message).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(message);
    expect(await readdir(dir)).toEqual([]);
  }
  // a good override is recorded as one
  const out = await backup(storage, { 'public.bookings': { via: 'bookings_vendor_id_fkey' } });
  expect((await treeOf(storage, out.snapshotId)).tenancy!['public.bookings']).toMatchObject({
    class: 'supplier',
    override: true,
  });
}, 120_000);

it('loads a tree written before backups recorded tenancy', () => {
  const old = { postgres: { kind: 'postgres', tables: [], tenants: [] } };
  expect(snapshotTree(old).postgres!.tenancy).toBeUndefined();
  expect(() => snapshotTree({ postgres: { ...old.postgres, tenancy: [] } })).toThrow(/postgres part/);
});
