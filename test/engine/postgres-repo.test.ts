import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Repository } from '../../src/engine/repo/repository.js';
import { restorePostgres } from '../../src/engine/postgres/restore.js';
import { backupPostgres } from '../../src/engine/postgres/backup.js';
import { snapshotTree, type PgTree } from '../../src/engine/tree.js';
import { seedDatabase } from '../../src/seed/database.js';
import { LocalStorage } from '../../src/storage/local.js';
import {
  createTempDatabase,
  dataDump,
  schemaObjects,
  query,
  tableDigests,
  type TempDatabase,
} from '../helpers/pg.js';
import { expectOneWedding, varyWeddings } from '../helpers/wedding-rows.js';

// The same round trip as postgres.test.ts, through the real repository: chunked, compressed,
// encrypted, packed, and a snapshot manifest carrying the tree as JSON.
const dir = mkdtempSync(path.join(tmpdir(), 'wv-pg-repo-'));
const masterKey = randomBytes(32);
const dbs: TempDatabase[] = [];
let source: TempDatabase;
let snapshotId: string;

beforeAll(async () => {
  source = await createTempDatabase('pgrepo_src', { create: false });
  dbs.push(source);
  await seedDatabase(source.url, { scale: 0.003 });
  await varyWeddings(source.url);
  const repo = await Repository.openOrInit(new LocalStorage('pg', dir), masterKey);
  const w = repo.writer();
  const postgres = await backupPostgres(w, {
    url: source.url,
    tenantKey: 'wedding_id',
    ceremonyDate: { table: 'weddings', column: 'wedding_date' },
  });
  await w.flush();
  await w.close();
  snapshotId = (await repo.saveSnapshot({ type: 'full', tree: { postgres }, stats: w.stats })).id;
}, 120_000);

afterAll(async () => {
  for (const d of dbs) await d.drop();
  rmSync(dir, { recursive: true, force: true });
});

it('restores the whole database from a reopened repository, exactly', async () => {
  const repo = await Repository.open(new LocalStorage('pg', dir), masterKey);
  const tree = snapshotTree((await repo.loadSnapshot(snapshotId)).tree);
  const target = await createTempDatabase('pgrepo_dst', { create: false });
  dbs.push(target);
  await restorePostgres(repo.reader(), tree.postgres!, { targetUrl: target.url });
  expect(await tableDigests(target.url)).toEqual(await tableDigests(source.url));
  expect(dataDump(target.url)).toBe(dataDump(source.url));
  expect(await schemaObjects(target.url)).toEqual(await schemaObjects(source.url));
});

it('restores one wedding from the repository: its rows exactly, the shared tables, no other wedding', async () => {
  const repo = await Repository.open(new LocalStorage('pg', dir), masterKey);
  const tree = snapshotTree((await repo.loadSnapshot(snapshotId)).tree).postgres!;
  const wedding = tree.tenants[2]!.id;
  const target = await createTempDatabase('pgrepo_one', { create: false });
  dbs.push(target);
  await restorePostgres(repo.reader(), tree, { targetUrl: target.url, wedding });
  await expectOneWedding(target.url, wedding, source.url);
});

it('an incremental backup reads only the tables that changed, and restores exactly', async () => {
  const repo = await Repository.open(new LocalStorage('pg', dir), masterKey);
  const full = snapshotTree((await repo.loadSnapshot(snapshotId)).tree).postgres!;
  const settings = {
    url: source.url,
    tenantKey: 'wedding_id',
    ceremonyDate: { table: 'weddings', column: 'wedding_date' },
  };
  const backup = async (parent: PgTree) => {
    const w = repo.writer();
    const tree = await backupPostgres(w, { ...settings, parent });
    await w.flush();
    await w.close();
    return { tree, stats: w.stats };
  };

  // nothing changed: every table comes from the parent, only the schema is read
  const same = await backup(full);
  expect(same.tree.tables.every((t) => t.reused)).toBe(true);
  expect(same.tree.tables.map((t) => t.digest)).toEqual(full.tables.map((t) => t.digest));
  // a reused table points at the parent's record list: nothing of it is read or written again
  expect(same.tree.tables.map((t) => t.segmentList)).toEqual(full.tables.map((t) => t.segmentList));
  expect(same.stats.bytesRead).toBeLessThan(100_000);

  // an update, a delete and an insert, each in another table: those three are read again
  await query(
    source.url,
    `UPDATE guests SET dietary = 'vegan' WHERE guest_id = (SELECT min(guest_id) FROM guests)`,
  );
  await query(source.url, `DELETE FROM rsvps WHERE rsvp_id = (SELECT max(rsvp_id) FROM rsvps)`);
  await query(
    source.url,
    `INSERT INTO venues (name, city, capacity) SELECT name || ' annex', city, capacity FROM venues LIMIT 1`,
  );
  const changed = await backup(same.tree);
  const reread = changed.tree.tables.filter((t) => !t.reused).map((t) => t.name);
  // and, without a change slot to say which guests moved, the tables reaching their wedding
  // through guests: a guest that moved to another wedding would take their rows along
  expect(reread.sort()).toEqual([
    'DietaryNotes',
    'gift_registry',
    'guest_messages',
    'guests',
    'menu_choices',
    'rsvps',
    'venues',
  ]);
  const target = await createTempDatabase('pgrepo_incr', { create: false });
  dbs.push(target);
  await restorePostgres(repo.reader(), changed.tree, { targetUrl: target.url });
  expect(await tableDigests(target.url)).toEqual(await tableDigests(source.url));
  expect(dataDump(target.url)).toBe(dataDump(source.url));

  // Change marks can lag behind a commit (statistics are flushed later): the row's xmin still
  // tells. Here the marks are current but the parent's snapshot predates the update.
  await query(
    source.url,
    `UPDATE couples SET partner_a = partner_a WHERE couple_id = (SELECT min(couple_id) FROM couples)`,
  );
  const probe = await backup(changed.tree);
  const again = await backup({ ...probe.tree, xidSnapshot: changed.tree.xidSnapshot });
  expect(again.tree.tables.find((t) => t.name === 'couples')!.reused).toBeFalsy();
  expect(again.tree.tables.find((t) => t.name === 'guests')!.reused).toBe(true);
}, 120_000);
