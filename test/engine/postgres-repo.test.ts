import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Repository } from '../../src/engine/repo/repository.js';
import { restorePostgres } from '../../src/engine/restore-postgres.js';
import { backupPostgres, type PgTree } from '../../src/engine/sources/postgres.js';
import { seedDatabase } from '../../src/seed/database.js';
import { LocalStorage } from '../../src/storage/local.js';
import {
  createTempDatabase,
  dataDump,
  schemaObjects,
  tableDigests,
  type TempDatabase,
} from '../helpers/pg.js';

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
  const repo = await Repository.openOrInit(new LocalStorage('pg', dir), masterKey);
  const w = repo.writer();
  const postgres = await backupPostgres(w, {
    url: source.url,
    tenantKey: 'wedding_id',
    ceremonyDate: 'weddings.wedding_date',
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
  const tree = (await repo.loadSnapshot(snapshotId)).tree as { postgres: PgTree };
  const target = await createTempDatabase('pgrepo_dst', { create: false });
  dbs.push(target);
  await restorePostgres(repo.reader(), tree.postgres, { targetUrl: target.url });
  expect(await tableDigests(target.url)).toEqual(await tableDigests(source.url));
  expect(dataDump(target.url)).toBe(dataDump(source.url));
  expect(await schemaObjects(target.url)).toEqual(await schemaObjects(source.url));
});

it('restores one wedding from the repository', async () => {
  const repo = await Repository.open(new LocalStorage('pg', dir), masterKey);
  const { postgres: tree } = (await repo.loadSnapshot(snapshotId)).tree as { postgres: PgTree };
  const wedding = tree.tenants[2]!.id;
  const target = await createTempDatabase('pgrepo_one', { create: false });
  dbs.push(target);
  const r = await restorePostgres(repo.reader(), tree, { targetUrl: target.url, wedding });
  const guests = tree.tables.find((t) => t.name === 'guests')!;
  const expected = guests.segments.find((s) => s.tenant === wedding)!.rows;
  expect(expected).toBe(150);
  expect(r.rows).toBeGreaterThan(expected);
  const digests = await tableDigests(target.url);
  expect(digests['public.guests']).toMatch(/^150:/);
});
