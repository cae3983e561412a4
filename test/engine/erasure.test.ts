// Erasure of one couple on every copy: keys destroyed, the proof read, a signed certificate; then
// no restore, one-wedding restore, drill or file restore of an older point yields anything of the
// wedding, every other wedding restores exactly, and later backups leave it out.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { postgresSourceSchema } from '../../src/config/schema.js';
import { runBackup } from '../../src/engine/backup.js';
import { runDrill } from '../../src/engine/drill.js';
import {
  certificateValid,
  certify,
  eraseOnTarget,
  withPrune,
  type ErasureRequest,
} from '../../src/engine/erase.js';
import { Repository } from '../../src/engine/repo/repository.js';
import { readRecords } from '../../src/engine/repo/records.js';
import { ledgerOf, replicateObjects } from '../../src/engine/replicate.js';
import type { PgTree, Segment } from '../../src/engine/tree.js';
import { restoreSnapshot } from '../../src/engine/restore.js';
import { NotInPointError } from '../../src/errors.js';
import { LocalStorage } from '../../src/storage/local.js';
import { createTempDatabase, PG_ADMIN_URL, query, type TempDatabase } from '../helpers/pg.js';
import { createTenancySchema } from '../helpers/tenancy-schema.js';
import { tempDirsForFile } from '../helpers/temp.js';

const tempDir = tempDirsForFile();
const masterKey = randomBytes(32);
const dbs: TempDatabase[] = [];
let source: TempDatabase;
let files: string;
let copies: LocalStorage[];

/** Rows of wedding `w` in each table that holds wedding rows, resolved through the source's keys. */
const WEDDING_ROWS: Record<string, string> = {
  'app."Weddings"': `SELECT count(*)::int AS n FROM app."Weddings" WHERE id = $1`,
  'app.guests': `SELECT count(*)::int AS n FROM app.guests WHERE wedding_id = $1`,
  'app.rsvp_answers': `SELECT count(*)::int AS n FROM app.rsvp_answers a JOIN app.guests g USING (guest_id) WHERE g.wedding_id = $1`,
  'app.rsvp_events': `SELECT count(*)::int AS n FROM app.rsvp_events a JOIN app.guests g USING (guest_id) WHERE g.wedding_id = $1`,
  'public.photos': `SELECT count(*)::int AS n FROM public.photos a JOIN app.guests g USING (guest_id) WHERE g.wedding_id = $1`,
};
const count = async (url: string, sql: string, w: number) =>
  (await query<{ n: number }>(url, sql, [w]))[0]!.n;

const input = (storage: LocalStorage) => ({
  storage,
  masterKey,
  type: 'full' as const,
  components: ['database', 'files'] as ('database' | 'files')[],
  operationId: randomBytes(8).toString('hex'),
  sources: {
    postgres: {
      ...postgresSourceSchema.parse({ ceremonyDate: 'app."Weddings"."Ceremony Date"' }),
      url: source.url,
      supplierKey: 'supplier_id',
      changeSlot: false,
    },
    files: [
      {
        name: 'files',
        path: files,
        prefix: '',
        scopes: [{ pattern: 'weddings/*/**', scope: 'wedding:{1}' }],
      },
    ],
  },
});

let before: string[];

beforeAll(async () => {
  source = await createTempDatabase('erasure');
  await createTenancySchema(source.url);
  files = await tempDir('wv-erasure-files-');
  for (const w of ['1', '2']) {
    mkdirSync(path.join(files, 'weddings', w), { recursive: true });
    writeFileSync(path.join(files, 'weddings', w, 'first-dance.jpg'), randomBytes(5000));
  }
  writeFileSync(path.join(files, 'terms.txt'), 'platform terms');
  copies = [
    new LocalStorage('copy-a', await tempDir('wv-erasure-a-')),
    new LocalStorage('copy-b', await tempDir('wv-erasure-b-')),
  ];
  before = [];
  for (const c of copies) before.push((await runBackup(input(c))).snapshotId);
}, 120_000);

afterAll(async () => {
  for (const d of [source, ...dbs]) await d?.drop();
});

const request = (): ErasureRequest => ({
  erasureId: '7b0a4c52-6f1e-4a55-9d8e-0c2b7f9f1a01',
  scope: 'wedding:1',
  reason: 'the couple asked to be forgotten',
  requestedBy: 'privacy@example.com',
  requestedAt: new Date().toISOString(),
});

it('destroys the wedding’s keys on every copy, proves it, and signs a certificate', async () => {
  const req = request();
  const done = [];
  for (const [i, c] of copies.entries()) done.push(await eraseOnTarget(`copy-${i}`, c, masterKey, req));
  for (const t of done) {
    expect(t.keysDestroyed.length).toBeGreaterThan(0);
    expect(t.verification).toMatch(/of wedding:1 no longer opens: erased/);
  }
  const cert = certify(req, done, masterKey);
  expect(certificateValid(cert, masterKey)).toBe(true);
  expect(certificateValid({ ...cert, scope: 'wedding:2' }, masterKey)).toBe(false);
  expect(certificateValid(cert, randomBytes(32))).toBe(false);
  expect(cert.text).toContain('wedding:1');
  // a second run finds nothing left to destroy, and still proves it
  const again = await eraseOnTarget('copy-0', copies[0]!, masterKey, req);
  expect(again.keysDestroyed).toEqual([]);
  expect(again.verification).toMatch(/no longer opens/);

  // the next prune deletes the wedding's blobs; its figures join the certificate, signed again
  const pruned = await (await Repository.open(copies[0]!, masterKey)).prune({ graceMs: 0 });
  expect(pruned.erasedBlobs).toBeGreaterThan(0);
  const record = {
    target: 'copy-0',
    prunedAt: new Date().toISOString(),
    erasedBlobs: pruned.erasedBlobs,
    bytesFreed: pruned.bytesFreed,
  };
  const after = withPrune(cert, [record], masterKey);
  expect(certificateValid(after, masterKey)).toBe(true);
  expect(certificateValid({ ...after, prune: [{ ...record, erasedBlobs: 0 }] }, masterKey)).toBe(false);
  expect(after.text).toContain(`${pruned.erasedBlobs} blob(s) of erased scopes deleted`);
  const proof = await eraseOnTarget('copy-0', copies[0]!, masterKey, req);
  expect(proof.verification).toMatch(/no longer opens/);
}, 120_000);

it('restores an older point from every copy without the wedding, and the other wedding exactly', async () => {
  for (const [i, c] of copies.entries()) {
    const repo = await Repository.open(c, masterKey);
    const target = await createTempDatabase(`erasure_full_${i}`, { create: false });
    dbs.push(target);
    const dir = await tempDir('wv-erasure-restore-');
    await restoreSnapshot(repo, before[i]!, { targetDatabase: target.url, targetDir: dir });
    for (const [table, sql] of Object.entries(WEDDING_ROWS)) {
      expect(await count(target.url, sql, 1), `${table} of wedding 1`).toBe(0);
      expect(await count(target.url, sql, 2), `${table} of wedding 2`).toBe(await count(source.url, sql, 2));
    }
    // the platform's rows stay
    expect(await query(target.url, 'SELECT * FROM public.settings')).toEqual([
      { key: 'theme', value: 'light' },
    ]);
    expect(
      await count(
        target.url,
        'SELECT count(*)::int AS n FROM public.photos WHERE guest_id IS NULL OR $1 = 0',
        1,
      ),
    ).toBe(1);
    expect(existsSync(path.join(dir, 'weddings', '1'))).toBe(false);
    expect(existsSync(path.join(dir, 'weddings', '2', 'first-dance.jpg'))).toBe(true);
    expect(existsSync(path.join(dir, 'terms.txt'))).toBe(true);

    await expect(
      restoreSnapshot(repo, before[i]!, { targetDatabase: `${target.url}_one`, wedding: '1' }),
    ).rejects.toThrow(NotInPointError);
    const drill = await runDrill(repo, before[i]!, { scratchServerUrl: PG_ADMIN_URL });
    expect(drill.problems).toEqual([]);
  }
}, 180_000);

it('leaves the erased wedding out of later backups while the source still holds it', async () => {
  const out = await runBackup(input(copies[0]!));
  expect(out.weddings).toEqual(['2']);
  expect(out.erased.find((e) => e.scope === 'wedding:1')?.rows).toBeGreaterThan(0);
  const repo = await Repository.open(copies[0]!, masterKey);
  const target = await createTempDatabase('erasure_after', { create: false });
  dbs.push(target);
  await restoreSnapshot(repo, out.snapshotId, { targetDatabase: target.url });
  for (const sql of Object.values(WEDDING_ROWS)) expect(await count(target.url, sql, 1)).toBe(0);
  expect(await count(source.url, WEDDING_ROWS['app.guests']!, 1)).toBeGreaterThan(0);
}, 120_000);

it('replication obeys the ledger: a copy that erased a wedding never gets its keys back', async () => {
  // two fresh copies of one repository; the wedding is erased on the second only (its erasure ran
  // first), then the first is copied onto it again
  const a = new LocalStorage('ledger-a', await tempDir('wv-erasure-la-'));
  const out = await runBackup(input(a));
  const b = new LocalStorage('ledger-b', await tempDir('wv-erasure-lb-'));
  const objects = await (await Repository.open(a, masterKey)).objectsForSnapshot(out.snapshotId);
  await replicateObjects(a, b, objects);
  const req = { ...request(), erasureId: '0c4e1d2a-7f3b-4c8e-9a1d-5e6f7a8b9c0d', scope: 'wedding:2' };
  expect((await eraseOnTarget('b', b, masterKey, req)).keysDestroyed.length).toBeGreaterThan(0);
  const opens = async (storage: LocalStorage) => {
    // the ledger on b would leave the wedding out of a restore anyway: read a blob of it directly
    const repo = await Repository.open(storage, masterKey);
    const guests = (await repo.loadSnapshot(out.snapshotId)).tree as { postgres: PgTree };
    const t = guests.postgres.tables.find((x) => x.name === 'guests')!;
    for await (const seg of readRecords<Segment>(repo.reader(), t.segmentList!)) {
      if (seg.scope !== 'wedding:2') continue;
      return repo
        .reader()
        .readBuffer(seg.ref)
        .then(
          () => true,
          () => false,
        );
    }
    throw new Error('no segment of wedding 2');
  };
  const ledger = await ledgerOf(masterKey, a, b);
  expect(ledger.objects).toEqual([]); // a holds no ledger entry of its own
  await replicateObjects(a, b, objects, { keyObject: ledger.keyObject });
  expect(await opens(b)).toBe(false);
  // without the ledger's rewrite, the copy brings the keys back: what the rewrite prevents
  await replicateObjects(a, b, objects);
  expect(await opens(b)).toBe(true);
}, 120_000);
