import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runDrill } from '../../src/engine/drill.js';
import { Repository } from '../../src/engine/repo/repository.js';
import { backupFiles } from '../../src/engine/files/index.js';
import { backupPostgres } from '../../src/engine/postgres/backup.js';
import { seedDatabase } from '../../src/seed/database.js';
import { LocalStorage } from '../../src/storage/local.js';
import { PG_ADMIN_URL, dbUrl, dropDatabase } from '../helpers/service.js';
import { tempDirsForFile } from '../helpers/temp.js';

const tempDir = tempDirsForFile();

const name = `wv_test_drill_${randomBytes(4).toString('hex')}`;
let repo: Repository;
let snapshotId: string;

beforeAll(async () => {
  await seedDatabase(dbUrl(name), { scale: 0.002 });
  repo = await Repository.init(new LocalStorage('drill', tempDir('wv-drill-repo-')), randomBytes(32));
  const files = tempDir('wv-drill-files-');
  mkdirSync(path.join(files, 'docs'));
  writeFileSync(path.join(files, 'docs', 'menu.txt'), 'Starter, main, cake');
  const w = repo.writer();
  const postgres = await backupPostgres(w, {
    url: dbUrl(name),
    tenantKey: 'wedding_id',
    ceremonyDate: { table: 'weddings', column: 'wedding_date' },
  });
  const entries = await backupFiles(w, { dir: files });
  await w.flush();
  await w.close();
  const snap = await repo.saveSnapshot({
    type: 'full',
    tree: { postgres, files: { files: entries } },
    stats: w.stats,
  });
  snapshotId = snap.id;
}, 120_000);

afterAll(async () => {
  await dropDatabase(name);
});

it('a drill on the seeded database passes and measures RTO', async () => {
  const r = await runDrill(repo, snapshotId, { scratchServerUrl: PG_ADMIN_URL });
  expect(r.problems).toEqual([]);
  expect(r.status).toBe('passed');
  expect(r.tables).toBe(15); // 11 in public, 4 in app (its partitioned table once)
  expect(r.files).toBeGreaterThanOrEqual(1);
  expect(r.rtoMs).toBeGreaterThan(0);
});

it('a drill whose restored copy lost rows fails, naming that table', async () => {
  const r = await runDrill(repo, snapshotId, {
    scratchServerUrl: PG_ADMIN_URL,
    beforeChecks: async (url) => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query('DELETE FROM rsvps WHERE rsvp_id % 10 = 0');
      await c.end();
    },
  });
  expect(r.status).toBe('failed');
  expect(r.problems).toEqual([expect.objectContaining({ object: 'public.rsvps', kind: 'row_count' })]);
});

it('a changed payment is caught by digest and payment total', async () => {
  const r = await runDrill(repo, snapshotId, {
    scratchServerUrl: PG_ADMIN_URL,
    beforeChecks: async (url) => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query('UPDATE payments SET amount = amount + 0.01 WHERE payment_id = 1');
      await c.end();
    },
  });
  expect(r.problems.map((p) => [p.object, p.kind])).toEqual([
    ['public.payments', 'digest'],
    ['public.payments', 'payment_total'],
  ]);
});
