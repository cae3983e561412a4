import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recoverToTarget, type RecoverOptions } from '../../../src/engine/pitr/recover.js';
import { createTempDatabase, query, tableDigests, type TempDatabase } from '../../helpers/pg.js';
import { pitrFixture, sleep, type PitrFixture } from '../../helpers/pitr.js';
import { createTenancySchema } from '../../helpers/tenancy-schema.js';

/** Children first: the schema's keys do not cascade. */
const DELETE_WEDDING_1 = `
  DELETE FROM app.answer_notes WHERE answer_id IN (SELECT answer_id FROM app.rsvp_answers a JOIN app.guests g USING (guest_id) WHERE g.wedding_id = 1);
  DELETE FROM app.rsvp_answers WHERE guest_id IN (SELECT guest_id FROM app.guests WHERE wedding_id = 1);
  DELETE FROM app.rsvp_events WHERE guest_id IN (SELECT guest_id FROM app.guests WHERE wedding_id = 1);
  DELETE FROM public.bookings WHERE guest_id IN (SELECT guest_id FROM app.guests WHERE wedding_id = 1);
  DELETE FROM public.photos WHERE guest_id IN (SELECT guest_id FROM app.guests WHERE wedding_id = 1);
  DELETE FROM app."Seating" WHERE "Wedding Ref" = 1;
  DELETE FROM app.tables WHERE wedding_id = 1;
  UPDATE app.guests SET plus_one_of = NULL WHERE wedding_id = 1;
  DELETE FROM app.guests WHERE wedding_id = 1;
  DELETE FROM app."Weddings" WHERE id = 1;`;

describe('recovery on a schema like a real platform: schemas, quoted names, composite keys, partitions', () => {
  let src: TempDatabase;
  let fx: PitrFixture;
  let at = '';
  let atDigests: Record<string, string> = {};
  const options = (o: Partial<RecoverOptions>): RecoverOptions => ({
    copies: fx.copies,
    masterKey: fx.masterKey,
    source: 'postgres',
    target: { time: at },
    targetDatabase: '',
    mode: 'new',
    feed: fx.feed,
    ...o,
  });

  beforeAll(async () => {
    src = await createTempDatabase('pitr_schema_src');
    await createTenancySchema(src.url);
    fx = await pitrFixture(src.url, 'schema', {
      tenantKey: 'wedding_id',
      supplierKey: 'supplier_id',
      ceremonyDate: { schema: 'app', table: 'Weddings', column: 'Ceremony Date' },
    });
    await fx.base();
    // after the base, wedding 1 and platform rows only (so the stream is what wedding 1's feed holds)
    await query(
      src.url,
      `INSERT INTO app.guests (wedding_id, name, plus_one_of) VALUES (1, 'dan', 1);
       INSERT INTO app.rsvp_answers (guest_id, answer) SELECT guest_id, 'maybe' FROM app.guests WHERE name = 'dan';
       INSERT INTO app.answer_notes (answer_id) SELECT answer_id FROM app.rsvp_answers WHERE answer = 'maybe';
       INSERT INTO app.tables VALUES (1, 5);
       INSERT INTO app."Seating" ("Wedding Ref", table_no) VALUES (1, 5);
       INSERT INTO public.suppliers VALUES (3, 'caterer');
       INSERT INTO public.bookings (vendor_id, guest_id) VALUES (3, 1);
       INSERT INTO public.photos (guest_id, url) VALUES (NULL, 'banner.jpg');
       UPDATE public.settings SET value = 'dark' WHERE key = 'theme'`,
    );
    await query(src.url, `UPDATE app.rsvp_events SET at = '2027-03-01' WHERE event_id = 1`); // across partitions
    await query(src.url, `UPDATE app."Weddings" SET title = 'one, renamed' WHERE id = 1`);
    await sleep(20);
    at = new Date().toISOString();
    atDigests = await tableDigests(src.url);
    await sleep(20);
    await query(src.url, `INSERT INTO app.guests (wedding_id, name) VALUES (2, 'after')`);
  });
  afterAll(async () => {
    await fx.cleanup();
    await src.drop();
  });

  it('recovers the whole database as of the time', async () => {
    const db = await createTempDatabase('pitr_schema_whole', { create: false });
    try {
      const r = await recoverToTarget(options({ targetDatabase: db.url }));
      expect(r.validation).toMatchObject({ ok: true, problems: [] });
      expect(await tableDigests(db.url)).toEqual(atDigests);
    } finally {
      await db.drop();
    }
  });

  it('merges wedding 1 back after its deletion: the database is as it was before it', async () => {
    const before = await tableDigests(src.url);
    await query(src.url, DELETE_WEDDING_1);
    const r = await recoverToTarget(options({ targetDatabase: src.url, mode: 'merge', wedding: '1' }));
    expect(r.merge!.conflicts).toEqual([]);
    expect(r.merge!.inserted['app.Weddings']).toBe(1);
    expect(r.validation.problems).toEqual([]);
    expect(await tableDigests(src.url)).toEqual(before);
  });
});
