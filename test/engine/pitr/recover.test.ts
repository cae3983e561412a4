import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError, NotInPointError, TransientError } from '../../../src/errors.js';
import { eraseOnTarget } from '../../../src/engine/erase.js';
import { Repository } from '../../../src/engine/repo/repository.js';
import { recoverToTarget, type RecoverOptions } from '../../../src/engine/pitr/recover.js';
import { compareLsn, type Txn } from '../../../src/engine/pitr/types.js';
import { createTempDatabase, query, tableDigests, type TempDatabase } from '../../helpers/pg.js';
import { pitrFixture, sleep, type PitrFixture } from '../../helpers/pitr.js';

const SCHEMA = `
  CREATE TABLE weddings (id int PRIMARY KEY, ceremony_date date NOT NULL, title text);
  CREATE TABLE suppliers (supplier_id int PRIMARY KEY, name text);
  CREATE TABLE guests (id serial PRIMARY KEY, wedding_id int NOT NULL REFERENCES weddings ON DELETE CASCADE, name text);
  CREATE TABLE payments (id serial PRIMARY KEY, wedding_id int NOT NULL REFERENCES weddings ON DELETE CASCADE,
    supplier_id int REFERENCES suppliers, amount numeric(12,2) NOT NULL);
  INSERT INTO weddings VALUES (1, '2027-05-01', 'one'), (2, '2027-06-01', 'two');
  INSERT INTO suppliers VALUES (7, 'florist');
  INSERT INTO guests (wedding_id, name) VALUES (1, 'ann'), (1, 'bob'), (2, 'cy');
  INSERT INTO payments (wedding_id, supplier_id, amount) VALUES (1, 7, 100.10), (2, NULL, 5.05);
  -- the DDL event trigger wedvault pitr enable installs: each DDL statement into the stream
  CREATE FUNCTION wv_ddl() RETURNS event_trigger LANGUAGE plpgsql AS
    $$ BEGIN PERFORM pg_logical_emit_message(true, 'wedvault_ddl', current_query()); END $$;
  CREATE EVENT TRIGGER wv_ddl ON ddl_command_end EXECUTE FUNCTION wv_ddl();
`;

describe('recoverToTarget: the whole database as of a time', () => {
  let src: TempDatabase;
  let fx: PitrFixture;
  const made: TempDatabase[] = [];
  const target = async (label: string) => {
    const db = await createTempDatabase(label, { create: false });
    made.push(db);
    return db;
  };
  const options = (o: Partial<RecoverOptions>): RecoverOptions => ({
    copies: fx.copies,
    masterKey: fx.masterKey,
    source: 'postgres',
    target: {},
    targetDatabase: '',
    mode: 'new',
    feed: fx.feed,
    ...o,
  });
  let between = '';
  let atBetween: Record<string, string> = {};

  beforeAll(async () => {
    src = await createTempDatabase('pitr_recover_src');
    await query(src.url, SCHEMA);
    fx = await pitrFixture(src.url, 'recover');
    await fx.base();
    const c = new pg.Client({ connectionString: src.url });
    await c.connect();
    // after the base: rows, then DDL (a column added and filled, a table renamed) in order
    await c.query(
      `INSERT INTO guests (wedding_id, name) VALUES (2, 'dee'); UPDATE payments SET amount = 200.20 WHERE id = 1`,
    );
    await c.query(`DELETE FROM guests WHERE name = 'bob'`);
    await c.query(`ALTER TABLE guests ADD COLUMN diet text`);
    await c.query(`UPDATE guests SET diet = 'veg' WHERE name = 'ann'`);
    await c.query('BEGIN');
    await c.query(`ALTER TABLE suppliers RENAME TO vendors`);
    await c.query(`INSERT INTO vendors VALUES (8, 'band')`);
    await c.query('COMMIT');
    await sleep(30);
    between = new Date().toISOString();
    atBetween = await tableDigests(src.url);
    await sleep(30);
    await c.query(
      `INSERT INTO guests (wedding_id, name) VALUES (1, 'late'); DELETE FROM payments WHERE id = 2`,
    );
    await c.end();
  });
  afterAll(async () => {
    for (const db of made) await db.drop();
    await fx.cleanup();
    await src.drop();
  });

  it('equals the source as it was at a time between two transactions, DDL replayed in order', async () => {
    const db = await target('pitr_recover_new');
    const r = await recoverToTarget(options({ target: { time: between }, targetDatabase: db.url }));
    expect(r.basePoint.id).toBe(fx.points[0]!.id);
    expect(fx.asked[0]).toMatchObject({
      source: 'postgres',
      afterLsn: fx.points[0]!.lsn,
      until: { time: between },
    });
    expect(r.appliedTxns).toBe(5);
    expect(r.achievedRpoS).toBe(0); // the stream went past the target
    expect(r.validation).toMatchObject({ ok: true, problems: [] });
    expect(await tableDigests(db.url)).toEqual(atBetween);
    expect(Object.keys(atBetween)).toContain('public.vendors');
    // sequences: a new guest on the recovered database takes a fresh id
    await query(db.url, `INSERT INTO guests (wedding_id, name) VALUES (1, 'new')`);
  });

  it('recovers to an LSN: the transactions committed at or before it, exclusive leaves it out', async () => {
    const seen: Txn[] = [];
    const repo = await Repository.open(fx.copies[0]!.storage, fx.masterKey);
    for await (const t of fx.feed(repo, fx.asked[0]!)) seen.push(t);
    // the third after the base: the DDL adding guests.diet, alone in its transaction
    const third = seen.filter((t) => compareLsn(t.commitLsn, fx.points[0]!.lsn) > 0)[2]!;
    const steps: string[] = [];
    const db = await target('pitr_recover_lsn');
    const r = await recoverToTarget(
      options({
        target: { lsn: third.commitLsn },
        targetDatabase: db.url,
        onProgress: (_f, step) => steps.push(step),
      }),
    );
    expect(r).toMatchObject({ appliedTxns: 3, lastCommitLsn: third.commitLsn, achievedRpoS: 0 });
    expect(steps.at(-1)).toBe('validated');
    const diet = `SELECT count(*)::int AS n FROM information_schema.columns WHERE column_name = 'diet'`;
    expect(await query(db.url, diet)).toEqual([{ n: 1 }]);
    const before = await target('pitr_recover_lsn_excl');
    const x = await recoverToTarget(
      options({ target: { lsn: third.commitLsn, inclusive: false }, targetDatabase: before.url }),
    );
    expect(x.appliedTxns).toBe(2);
    expect(await query(before.url, diet)).toEqual([{ n: 0 }]);
  });

  it('recovers to the latest time and reports the shortfall when the stream ends before the target', async () => {
    const db = await target('pitr_recover_latest');
    const future = new Date(Date.now() + 60_000).toISOString();
    const r = await recoverToTarget(options({ target: { time: future }, targetDatabase: db.url }));
    expect(await tableDigests(db.url)).toEqual(await tableDigests(src.url));
    expect(r.achievedRpoS).toBeGreaterThan(50);
  });

  it('leaves no database behind when the replay fails, and never touches a database with tables', async () => {
    const db = await target('pitr_recover_fail');
    const bad = options({
      target: { time: between },
      targetDatabase: db.url,
      feed: async function* () {
        yield {
          xid: '1',
          commitLsn: 'FFFFFFFF/0',
          commitTime: between,
          changes: [{ kind: 'row', op: 'INSERT', schema: 'public', table: 'nowhere', new: { a: '1' } }],
        };
      },
    });
    await expect(recoverToTarget(bad)).rejects.toThrow(/nowhere/);
    expect(await query(src.url, 'SELECT 1 FROM pg_database WHERE datname = $1', [db.name])).toEqual([]);
    const before = await tableDigests(src.url);
    await expect(
      recoverToTarget(options({ target: { time: between }, targetDatabase: src.url })),
    ).rejects.toThrow(ConflictError);
    expect(await tableDigests(src.url)).toEqual(before);
  });

  it('fails with the reason when the target database cannot be reached', async () => {
    const err = await recoverToTarget(
      options({ target: { time: between }, targetDatabase: 'postgres://postgres@127.0.0.1:1/nowhere' }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toMatch(/target database unreachable/);
  });

  it('refuses a target past a schema change the DDL trigger did not see, naming both times', async () => {
    const at = new Date(Date.parse(fx.points[0]!.time) + 1).toISOString();
    const db = await target('pitr_recover_break');
    const window = async () => ({
      segments: 1,
      gaps: [],
      schemaBreaks: [{ at, basePointId: 'p2', baseTime: '2099-01-01T00:00:00Z' }],
    });
    const err = await recoverToTarget(
      options({ target: { time: between }, targetDatabase: db.url, window }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as Error).message).toContain(at);
    expect((err as Error).message).toContain('2099-01-01T00:00:00Z');
    expect(await query(src.url, 'SELECT 1 FROM pg_database WHERE datname = $1', [db.name])).toEqual([]);
    // a base point after the target cannot serve
    await expect(
      recoverToTarget(
        options({ target: { time: fx.points[0]!.time.replace(/^\d{4}/, '2000') }, targetDatabase: db.url }),
      ),
    ).rejects.toThrow(/no database recovery point/);
  });

  it('stages a whole recovery: the shared tables and the first weddings usable first, then the rest', async () => {
    const db = await target('pitr_recover_staged');
    const stages: { name: string; weddings: string[]; guests: { wedding_id: number; name: string }[] }[] = [];
    const r = await recoverToTarget(
      options({
        target: { time: between },
        targetDatabase: db.url,
        firstWeddings: ['1'],
        onStage: async (s: { name: string; weddings: string[] }) => {
          const guests = await query<{ wedding_id: number; name: string }>(
            db.url,
            'SELECT wedding_id, name FROM guests ORDER BY name',
          );
          stages.push({ ...s, guests });
        },
      }),
    );
    expect(stages.map((s) => [s.name, s.weddings])).toEqual([
      ['first', ['1']],
      ['rest', ['2']],
    ]);
    expect(stages[0]!.guests).toEqual([{ wedding_id: 1, name: 'ann' }]); // wedding 2 not there yet
    expect(stages[1]!.guests.map((g) => g.name)).toEqual(['ann', 'cy', 'dee']);
    expect(r.validation).toMatchObject({ ok: true, problems: [] });
    expect(await tableDigests(db.url)).toEqual(atBetween);
  });

  // last: it erases wedding 2 in the fixture's repository
  it('re-applies the erasure ledger: an erased wedding stays out, whatever the stream carries', async () => {
    await eraseOnTarget('local', fx.copies[0]!.storage, fx.masterKey, {
      erasureId: 'e-1',
      scope: 'wedding:2',
      reason: 'test',
      requestedBy: 'test',
      requestedAt: new Date().toISOString(),
    });
    const db = await target('pitr_recover_erased');
    const r = await recoverToTarget(options({ target: { time: between }, targetDatabase: db.url }));
    // the segments' parts of the erased wedding are never read (its key is gone): nothing to take out after
    expect(r.validation.checks.erasedRows ?? 0).toBe(0);
    const left = await query(
      db.url,
      `SELECT (SELECT count(*) FROM guests WHERE wedding_id = 2)::int AS g,
      (SELECT count(*) FROM payments WHERE wedding_id = 2)::int AS p, (SELECT count(*) FROM weddings WHERE id = 2)::int AS w,
      (SELECT count(*) FROM guests)::int AS others`,
    );
    expect(left).toEqual([{ g: 0, p: 0, w: 0, others: 1 }]);
    const again = await target('pitr_recover_erased_one');
    await expect(
      recoverToTarget(options({ target: { time: between }, targetDatabase: again.url, wedding: '2' })),
    ).rejects.toThrow(NotInPointError);
  });
});
