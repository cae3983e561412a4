import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readTables, readTenancyFacts } from '../../src/engine/postgres/catalog.js';
import { classifyTenancy, describeTenancy, tableLabel } from '../../src/engine/postgres/tenancy.js';
import { createTempDatabase, type TempDatabase } from '../helpers/pg.js';
import { createTenancySchema, TENANCY_LINES } from '../helpers/tenancy-schema.js';

let db: TempDatabase;
let client: pg.Client;

beforeAll(async () => {
  db = await createTempDatabase('tenancy');
  await createTenancySchema(db.url);
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

it('reads keys, NOT NULL and partitions across schemas and quoted names', async () => {
  const facts = await readTenancyFacts(client);
  const seating = facts.find((t) => t.name === 'Seating')!;
  expect(seating.schema).toBe('app');
  expect(seating.foreignKeys).toEqual([
    {
      name: 'seating_table_fkey',
      columns: ['Wedding Ref', 'table_no'],
      references: { schema: 'app', name: 'tables' },
      referencedColumns: ['wedding_id', 'table_no'],
    },
  ]);
  expect(seating.columns).toContainEqual({ name: 'Wedding Ref', notNull: true });
  expect(facts.find((t) => t.name === 'photos')!.columns).toContainEqual({
    name: 'guest_id',
    notNull: false,
  });
  expect(facts.find((t) => t.name === 'rsvp_events_2027')).toMatchObject({
    partitionOf: { schema: 'app', name: 'rsvp_events' },
    // the key cloned onto each partition is the parent's: listed once, on the parent
    foreignKeys: [],
  });
  expect(facts.find((t) => t.name === 'tables')!.primaryKey).toEqual(['wedding_id', 'table_no']);
  expect(
    facts
      .find((t) => t.name === 'guests')!
      .foreignKeys.map((k) => k.name)
      .sort(),
  ).toEqual(['guests_plus_one_of_fkey', 'guests_wedding_id_fkey']);
});

it('classifies the catalog of a real database', async () => {
  const out = classifyTenancy(await readTenancyFacts(client), {
    tenantColumn: 'wedding_id',
    supplierColumn: 'supplier_id',
    tenantTable: { schema: 'app', table: 'Weddings' },
  });
  expect(out.map((t) => `${tableLabel(t)}: ${describeTenancy(t)}`).sort()).toEqual([...TENANCY_LINES].sort());
});

it('leaves out the tables the config excludes, by schema and quoted name', async () => {
  const names = async (excludeTables: { schema?: string; table: string }[]) =>
    (
      await readTables(client, {
        tenantKey: 'wedding_id',
        ceremonyDate: { schema: 'app', table: 'Weddings', column: 'Ceremony Date' },
        excludeTables,
      })
    ).map((t) => `${t.schema}.${t.name}`);
  expect(await names([])).toContain('app.Seating');
  const left = await names([
    { schema: 'app', table: 'Seating' },
    { table: 'photos' },
    { schema: 'app', table: 'a' },
  ]);
  expect(left).not.toContain('app.Seating');
  expect(left).not.toContain('public.photos');
  // a schema given must match: public.a stays
  expect(left).toContain('public.a');
});
