import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError, ValidationError } from '../../../src/errors.js';
import { recoverToTarget, type RecoverOptions } from '../../../src/engine/pitr/recover.js';
import { createTempDatabase, query, type TempDatabase } from '../../helpers/pg.js';
import { allRows, pitrFixture, sleep, type PitrFixture } from '../../helpers/pitr.js';

const SCHEMA = `
  CREATE TABLE weddings (id int PRIMARY KEY, ceremony_date date NOT NULL, title text);
  CREATE TABLE suppliers (supplier_id int PRIMARY KEY, name text);
  CREATE TABLE guests (id serial PRIMARY KEY, wedding_id int NOT NULL REFERENCES weddings ON DELETE CASCADE,
    name text, tags text[], born timestamptz);
  CREATE TABLE rsvp_answers (id serial PRIMARY KEY, guest_id int NOT NULL REFERENCES guests ON DELETE CASCADE, answer jsonb);
  CREATE TABLE payments (id serial PRIMARY KEY, wedding_id int NOT NULL REFERENCES weddings ON DELETE CASCADE,
    supplier_id int REFERENCES suppliers, amount numeric(12,2) NOT NULL, receipt bytea);
  INSERT INTO weddings VALUES (41, '2027-05-01', 'forty-one'), (42, '2027-06-01', 'forty-two'), (43, '2027-07-01', 'x'),
    (44, '2027-08-01', 'quiet');
  INSERT INTO suppliers VALUES (7, 'florist'), (8, 'band'), (9, 'cake');
  INSERT INTO guests (wedding_id, name, tags, born) SELECT 41 + g % 3, 'g' || g, '{a,"b c"}', '1990-01-01 10:00+02'
    FROM generate_series(1, 30) g;
  INSERT INTO rsvp_answers (guest_id, answer) SELECT id, '{"yes": true}' FROM guests;
  INSERT INTO payments (wedding_id, supplier_id, amount, receipt)
    SELECT 41 + g % 3, 7 + g % 2, g * 10.01, '\\xdead' FROM generate_series(1, 12) g;
  INSERT INTO payments (wedding_id, supplier_id, amount) VALUES (42, 9, 0.01);
`;

/** Writes to weddings 41 and 43 (guests added and deleted, payments changed) until stopped. */
function startLoad(url: string): () => Promise<void> {
  let stop = false;
  const load = (async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    for (let i = 0; !stop; i++) {
      const w = i % 2 ? 41 : 43;
      await c.query('BEGIN');
      await c.query(`INSERT INTO guests (wedding_id, name) VALUES ($1, $2)`, [w, `load${i}`]);
      await c.query(
        `UPDATE payments SET amount = amount + 1 WHERE id = (SELECT min(id) FROM payments WHERE wedding_id = $1)`,
        [w],
      );
      await c.query('COMMIT');
      if (i % 5 === 0)
        await c.query(`DELETE FROM guests WHERE id = (SELECT min(id) FROM guests WHERE wedding_id = $1)`, [
          w,
        ]);
      await sleep(5);
    }
    await c.end();
  })();
  return async () => {
    stop = true;
    await load;
  };
}

/** Every row the load does not write (weddings 41 and 43's guests, answers and payments are its). */
const UNLOADED = `SELECT 'weddings' t, x::text r FROM weddings x
  UNION ALL SELECT 'suppliers', x::text FROM suppliers x
  UNION ALL SELECT 'guests', x::text FROM guests x WHERE wedding_id NOT IN (41, 43)
  UNION ALL SELECT 'rsvp_answers', a::text FROM rsvp_answers a JOIN guests g ON g.id = a.guest_id WHERE g.wedding_id NOT IN (41, 43)
  UNION ALL SELECT 'payments', x::text FROM payments x WHERE wedding_id NOT IN (41, 43) ORDER BY 1, 2`;

/** Rows of wedding 42, every table, as text: what the merge must bring back. */
const W42 = `SELECT 'weddings' t, x::text r FROM weddings x WHERE id = 42
  UNION ALL SELECT 'guests', x::text FROM guests x WHERE wedding_id = 42
  UNION ALL SELECT 'rsvp_answers', a::text FROM rsvp_answers a JOIN guests g ON g.id = a.guest_id WHERE g.wedding_id = 42
  UNION ALL SELECT 'payments', x::text FROM payments x WHERE wedding_id = 42 ORDER BY 1, 2`;

describe('recoverToTarget merge: one wedding back into the live database', () => {
  let live: TempDatabase;
  let fx: PitrFixture;
  let beforeDelete = '';
  let w42: { t: string; r: string }[] = [];
  let afterLoad: Record<string, string[]> = {};
  const options = (o: Partial<RecoverOptions> = {}): RecoverOptions => ({
    copies: fx.copies,
    masterKey: fx.masterKey,
    source: 'postgres',
    target: { time: beforeDelete },
    wedding: '42',
    targetDatabase: live.url,
    mode: 'merge',
    feed: fx.feed,
    ...o,
  });

  beforeAll(async () => {
    live = await createTempDatabase('pitr_merge_live');
    await query(live.url, SCHEMA);
    fx = await pitrFixture(live.url, 'merge');
    await fx.base();
    // a steady write load on the other weddings while wedding 42 changes, is deleted and comes back
    const stopLoad = startLoad(live.url);
    // wedding 42 after the base point: a guest with an answer, a payment changed, one deleted
    await query(
      live.url,
      `INSERT INTO guests (wedding_id, name) VALUES (42, 'late guest');
       INSERT INTO rsvp_answers (guest_id, answer) SELECT id, '{"late": 1}' FROM guests WHERE name = 'late guest'`,
    );
    await query(
      live.url,
      `UPDATE payments SET amount = 999.99, receipt = NULL WHERE id = (SELECT min(id) FROM payments WHERE wedding_id = 42)`,
    );
    await query(
      live.url,
      `DELETE FROM payments WHERE id = (SELECT max(id) FROM payments WHERE wedding_id = 42 AND supplier_id <> 9)`,
    );
    // a wedding the base point does not hold
    await query(
      live.url,
      `INSERT INTO weddings VALUES (45, '2027-09-01', 'new'); INSERT INTO guests (wedding_id, name) VALUES (45, 'newly wed')`,
    );
    // a guest (with an answer) moves to wedding 44: the stream names the guest, not its answer
    await query(
      live.url,
      `UPDATE guests SET wedding_id = 44 WHERE id = (SELECT min(id) FROM guests WHERE wedding_id = 42)`,
    );
    await sleep(100);
    w42 = await query(live.url, W42);
    await sleep(1100);
    // T: wedding 42 deleted (cascades to its guests, answers and payments); recovered as of T - 1 s
    const [{ now }] = (await query<{ now: Date }>(
      live.url,
      `DELETE FROM weddings WHERE id = 42 RETURNING now()`,
    )) as [{ now: Date }];
    beforeDelete = new Date(now.getTime() - 1000).toISOString();
    await sleep(300);
    await stopLoad();
    afterLoad = await allRows(live.url);
  });
  afterAll(async () => {
    await fx.cleanup();
    await live.drop();
  });

  it('counts in a dry run and changes nothing', async () => {
    const r = await recoverToTarget(options({ dryRun: true }));
    expect(r.dryRun).toBe(true);
    expect(r.merge!.conflicts).toEqual([]);
    expect(r.merge!.missingReferences).toEqual([]);
    const count = (t: string) => w42.filter((x) => x.t === t).length;
    expect(r.merge!.inserted).toEqual({
      'public.weddings': 1,
      'public.guests': count('guests'),
      'public.rsvp_answers': count('rsvp_answers'),
      'public.payments': count('payments'),
    });
    expect(await allRows(live.url)).toEqual(afterLoad);
  });

  it('refuses, listing them, when rows reference platform rows the live database lacks', async () => {
    await query(live.url, `DELETE FROM suppliers WHERE supplier_id = 9`);
    const err = await recoverToTarget(options()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    const report = (err as ConflictError).details as {
      merge: { missingReferences: { table: string; rows: string[] }[] };
    };
    expect(report.merge.missingReferences).toMatchObject([
      { table: 'public.payments', rows: ['(9) → public.suppliers'] },
    ]);
    await query(live.url, `INSERT INTO suppliers VALUES (9, 'cake')`);
    expect(await allRows(live.url)).toEqual(afterLoad);
  });

  it('brings back exactly the wedding as of T - 1 s, every other row unchanged', async () => {
    const r = await recoverToTarget(options());
    expect(r.validation).toMatchObject({ ok: true, problems: [] });
    expect(r.appliedTxns).toBeGreaterThan(10);
    expect(await query(live.url, W42)).toEqual(w42);
    const now = await allRows(live.url);
    for (const [table, rows] of Object.entries(now)) {
      const added = rows.filter((x) => !afterLoad[table]!.includes(x));
      expect(afterLoad[table]!.filter((x) => !rows.includes(x))).toEqual([]); // nothing else changed or went
      const table42 = table.replace('public.', '');
      expect(added.sort()).toEqual(
        w42
          .filter((x) => x.t === table42)
          .map((x) => x.r)
          .sort(),
      );
    }
  });

  it('refuses a merge whose keys are live already, listing them, and changes nothing', async () => {
    const before = await allRows(live.url);
    const err = await recoverToTarget(options()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    const { merge } = (err as ConflictError).details as {
      merge: { conflicts: { table: string; keys: string[] }[] };
    };
    expect(merge.conflicts.map((c) => c.table)).toContain('public.weddings');
    expect(merge.conflicts.find((c) => c.table === 'public.weddings')!.keys).toEqual(['(42)']);
    expect(await allRows(live.url)).toEqual(before);
    const dry = await recoverToTarget(options({ dryRun: true }));
    expect(dry.merge!.conflicts.length).toBeGreaterThan(0);
    expect(await allRows(live.url)).toEqual(before);
  });

  it('merges while the load goes on: the wedding back, every row the load does not write unchanged', async () => {
    const stopLoad = startLoad(live.url);
    try {
      await query(live.url, 'DELETE FROM weddings WHERE id = 42');
      const before = await query<{ t: string; r: string }>(live.url, UNLOADED);
      const r = await recoverToTarget(options());
      expect(r.validation.problems).toEqual([]);
      const after = await query<{ t: string; r: string }>(live.url, UNLOADED);
      const key = (x: { t: string; r: string }) => `${x.t}\t${x.r}`;
      expect(after.map(key).sort()).toEqual([...before, ...w42].map(key).sort());
    } finally {
      await stopLoad();
    }
    expect(await query(live.url, W42)).toEqual(w42);
  });

  it('recovers the wedding alone into a new database: its rows and the platform rows', async () => {
    const db = await createTempDatabase('pitr_merge_one', { create: false });
    try {
      const r = await recoverToTarget(options({ mode: 'new', targetDatabase: db.url }));
      expect(r.validation).toMatchObject({ ok: true, problems: [], checks: { pruned: 1 } });
      expect(await query(db.url, W42)).toEqual(w42);
      expect(await query(db.url, 'SELECT DISTINCT wedding_id FROM guests')).toEqual([{ wedding_id: 42 }]);
      expect(await query(db.url, 'SELECT supplier_id FROM suppliers ORDER BY 1')).toHaveLength(3);
    } finally {
      await db.drop();
    }
  });

  it('recovers a wedding created after the base point', async () => {
    const db = await createTempDatabase('pitr_merge_new', { create: false });
    try {
      const r = await recoverToTarget(options({ mode: 'new', targetDatabase: db.url, wedding: '45' }));
      expect(r.validation).toMatchObject({ ok: true, problems: [] });
      expect(await query(db.url, 'SELECT wedding_id, name FROM guests')).toEqual([
        { wedding_id: 45, name: 'newly wed' },
      ]);
      expect(await query(db.url, 'SELECT id FROM weddings')).toEqual([{ id: 45 }]);
    } finally {
      await db.drop();
    }
  });

  it('needs a wedding, and leaves no scratch database behind', async () => {
    await expect(recoverToTarget(options({ wedding: undefined }))).rejects.toThrow(ValidationError);
    const r = await recoverToTarget(options({ dryRun: true }));
    const scratch = r.validation.checks.scratchDatabase as string;
    expect(scratch).toMatch(/^wv_pitr_/);
    expect(await query(live.url, 'SELECT 1 FROM pg_database WHERE datname = $1', [scratch])).toEqual([]);
  });
});
