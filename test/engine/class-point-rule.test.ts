// A point-relative class rule ("30d"): the class's key serves every point (dedup), so it is never
// destroyed; every restore and drill of a point older than the rule leaves the class out, for every
// wedding, while newer points still yield it.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { keepRuleSchema, postgresSourceSchema, type DataClass } from '../../src/config/schema.js';
import { runBackup } from '../../src/engine/backup.js';
import { runDrill } from '../../src/engine/drill.js';
import { Repository } from '../../src/engine/repo/repository.js';
import { restoreSnapshot } from '../../src/engine/restore.js';
import { expiredPointClasses } from '../../src/policy/class-expiry.js';
import { LocalStorage } from '../../src/storage/local.js';
import { createTempDatabase, PG_ADMIN_URL, query, type TempDatabase } from '../helpers/pg.js';
import { createTenancySchema } from '../helpers/tenancy-schema.js';
import { tempDirsForFile } from '../helpers/temp.js';

const tempDir = tempDirsForFile();
const masterKey = randomBytes(32);
const dbs: TempDatabase[] = [];
let source: TempDatabase;
let storage: LocalStorage;

const guestPii: DataClass = {
  name: 'guest-pii',
  tables: [{ schema: 'app', table: 'guests' }],
  files: [],
  keep: keepRuleSchema.parse('30d'),
};

beforeAll(async () => {
  source = await createTempDatabase('class_point');
  await createTenancySchema(source.url);
  storage = new LocalStorage('class-point', await tempDir('wv-class-point-'));
});
afterAll(async () => {
  for (const d of [source, ...dbs]) await d?.drop();
});

it('reads "30d" as a rule from the point, and "wedding + 90d" from the ceremony', () => {
  expect(keepRuleSchema.parse('30d')).toMatchObject({ from: 'point', text: '30d' });
  expect(keepRuleSchema.parse('wedding + 90d')).toMatchObject({ from: 'wedding' });
  expect(keepRuleSchema.safeParse('soon').error?.issues[0]?.message).toMatch(
    /expected "wedding \+ <duration>"/,
  );
});

it('leaves the class out of every restore and drill of a point past the rule, and only of those', async () => {
  const out = await runBackup({
    storage,
    masterKey,
    type: 'full',
    components: ['database'],
    operationId: randomBytes(8).toString('hex'),
    sources: {
      postgres: {
        ...postgresSourceSchema.parse({ ceremonyDate: 'app."Weddings"."Ceremony Date"' }),
        url: source.url,
        supplierKey: 'supplier_id',
        changeSlot: false,
      },
      files: [],
    },
    classes: [{ name: guestPii.name, tables: guestPii.tables, files: [] }],
  });
  const repo = await Repository.open(storage, masterKey);
  const restoreAt = async (now: Date) => {
    const target = await createTempDatabase('class_point_restore', { create: false });
    dbs.push(target);
    await restoreSnapshot(repo, out.snapshotId, {
      targetDatabase: target.url,
      expiredClasses: expiredPointClasses([guestPii], () => now),
    });
    return target.url;
  };
  const guests = async (url: string) =>
    (await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM app.guests'))[0]!.n;
  const answers = async (url: string) =>
    (await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM app.rsvp_answers'))[0]!.n;
  // within 30 days of the point: the guests are there
  const soon = await restoreAt(new Date(Date.now() + 10 * 86_400_000));
  expect(await guests(soon)).toBe(await guests(source.url));
  // past it: no guest of any wedding, nor the answers reaching them; the weddings stay
  const late = await restoreAt(new Date(Date.now() + 40 * 86_400_000));
  expect(await guests(late)).toBe(0);
  expect(await answers(late)).toBe(0);
  expect((await query(late, 'SELECT id FROM app."Weddings"')).length).toBe(2);
  const drill = await runDrill(repo, out.snapshotId, {
    scratchServerUrl: PG_ADMIN_URL,
    expiredClasses: expiredPointClasses([guestPii], () => new Date(Date.now() + 40 * 86_400_000)),
  });
  expect(drill.problems).toEqual([]);
}, 120_000);
