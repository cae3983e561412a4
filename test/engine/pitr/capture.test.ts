import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capture } from '../../../src/engine/pitr/capture.js';
import { dropOldSegments } from '../../../src/engine/forget.js';
import { backupPostgres } from '../../../src/engine/postgres/backup.js';
import { changeFeed } from '../../../src/engine/pitr/feed.js';
import { pitrWindow } from '../../../src/engine/pitr/window.js';
import { installDdlTrigger } from '../../../src/engine/postgres/pitr-source.js';
import { Repository } from '../../../src/engine/repo/repository.js';
import { compareLsn, DDL_MESSAGE_PREFIX, type Txn } from '../../../src/engine/pitr/types.js';
import { LocalStorage } from '../../../src/storage/local.js';
import { createTempDatabase, query, type TempDatabase } from '../../helpers/pg.js';
import { tempDirsForFile } from '../../helpers/temp.js';

const tempDir = tempDirsForFile();

const SCHEMA = `
CREATE TABLE weddings (id int PRIMARY KEY, ceremony_date date);
CREATE TABLE guests (id serial PRIMARY KEY, wedding_id int NOT NULL REFERENCES weddings, name text);
CREATE TABLE answers (id serial PRIMARY KEY, guest_id int NOT NULL REFERENCES guests ON DELETE CASCADE, answer text);
CREATE TABLE settings (k text PRIMARY KEY, v text);
INSERT INTO weddings VALUES (1, '2027-06-01'), (2, '2027-07-01');`;

describe('Capture: the change stream into segments, and back', () => {
  let src: TempDatabase;
  let repo: Repository;
  let copy: LocalStorage;
  let capture: Capture;
  const masterKey = randomBytes(32);
  let options: ConstructorParameters<typeof Capture>[0];
  const bases: string[] = [];
  const slot = `wv_cap_${randomBytes(4).toString('hex')}`;
  const drain = async () => {
    while ((await capture.step()).txns > 0);
  };
  const read = async (o: { wedding?: string; afterLsn?: string } = {}) => {
    const out: Txn[] = [];
    const first = (await repo.segmentSummary((await repo.listSegmentKeys('postgres'))[0]!)).startLsn;
    for await (const t of changeFeed(repo, {
      source: 'postgres',
      afterLsn: o.afterLsn ?? first,
      until: { time: new Date(Date.now() + 60_000).toISOString() },
      wedding: o.wedding,
    }))
      out.push(t);
    return out;
  };

  beforeAll(async () => {
    src = await createTempDatabase('pitr_capture');
    await query(src.url, SCHEMA);
    const storage = new LocalStorage('primary', tempDir('wv-cap-'));
    copy = new LocalStorage('second', tempDir('wv-cap2-'));
    repo = await Repository.init(storage, masterKey);
    options = {
      url: src.url,
      source: 'postgres',
      slot,
      segmentBytes: 1 << 20,
      schema: { tenantKey: 'wedding_id', ceremonyDate: { table: 'weddings', column: 'ceremony_date' } },
      repo,
      copies: [{ target: 'second', storage: copy }],
      heartbeatMs: 0,
      onBaseNeeded: (why) => void bases.push(why),
    };
    capture = new Capture(options);
    await capture.step(); // the slot
  });
  afterAll(async () => {
    await capture.close();
    await query(
      src.url,
      `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`,
      [slot],
    );
    await src.drop();
  });

  it('splits each transaction by wedding (FK-reached rows too) and gives it back whole or per wedding', async () => {
    await query(
      src.url,
      `INSERT INTO guests (wedding_id, name) VALUES (1, 'ann'), (2, 'bob');
       INSERT INTO answers (guest_id, answer) VALUES (1, 'yes'), (2, 'no');
       INSERT INTO settings VALUES ('theme', 'dark')`,
    );
    await query(src.url, `UPDATE answers SET answer = 'maybe' WHERE guest_id = 2`);
    await query(src.url, `DELETE FROM answers WHERE guest_id = 1`);
    await drain();
    const whole = await read();
    expect(whole.map((t) => t.changes.map((c) => `${c.kind}:${'table' in c ? c.table : ''}`))).toEqual([
      ['row:guests', 'row:guests', 'row:answers', 'row:answers', 'row:settings'],
      ['row:answers'], // the update; its touch names its owner and is not part of a whole replay
      ['touch:answers'], // a delete whose owner the key does not say: a delete by key
    ]);
    const one = await read({ wedding: '1' });
    const rows = one.flatMap((t) => t.changes).filter((c) => c.kind === 'row');
    // wedding 1's guest and answer, the platform's settings; nothing of wedding 2
    expect(
      rows.map((c) => (c.kind === 'row' ? `${c.table}:${c.new?.name ?? c.new?.answer ?? c.new?.v}` : '')),
    ).toEqual(['guests:ann', 'answers:yes', 'settings:dark']);
    // wedding 1 sees the other wedding's update only as a touch naming wedding 2, and its own delete
    expect(one.flatMap((t) => t.changes).filter((c) => c.kind === 'touch')).toEqual([
      { kind: 'touch', schema: 'public', table: 'answers', key: { id: '2' }, scope: 'wedding:2' },
      { kind: 'touch', schema: 'public', table: 'answers', key: { id: '1' } },
    ]);
    // sequences recorded with the segment
    expect(whole.at(-1)!.sequences).toMatchObject({ '"public"."guests_id_seq"': '2' });
    // every segment on the second copy as well
    const onCopy: string[] = [];
    for await (const o of copy.list('changes/postgres/')) onCopy.push(o.key);
    expect(onCopy.sort()).toEqual(await repo.listSegmentKeys('postgres'));
  });

  it('continues after a restart with no gap and no duplicate, and the window has no hole', async () => {
    await query(src.url, `INSERT INTO guests (wedding_id, name) VALUES (1, 'cy')`);
    await drain();
    await capture.close();
    // a new capture of the same slot, as after a crash: it takes up where the newest segment ends
    const again = new Capture(options);
    await query(src.url, `INSERT INTO guests (wedding_id, name) VALUES (2, 'dee')`);
    while ((await again.step()).txns > 0);
    await again.close();
    const names = (await read())
      .flatMap((t) => t.changes)
      .flatMap((c) => (c.kind === 'row' && c.table === 'guests' && c.new ? [c.new.name] : []));
    expect(names).toEqual(['ann', 'bob', 'cy', 'dee']);
    const w = await pitrWindow(repo, 'postgres', []);
    expect(w.gaps).toEqual([]);
    expect(w.segments).toBeGreaterThan(2);
  });

  it('marks a schema change the DDL trigger did not see, and asks for a base backup', async () => {
    await query(src.url, `ALTER TABLE guests ADD COLUMN diet text`);
    await query(src.url, `INSERT INTO guests (wedding_id, name, diet) VALUES (1, 'eve', 'vegan')`);
    await drain();
    const keys = await repo.listSegmentKeys('postgres');
    const breaks = [];
    for (const k of keys) if ((await repo.segmentSummary(k)).schemaBreak) breaks.push(k);
    expect(breaks).toHaveLength(1);
    expect(bases.some((b) => b.includes('schema changed'))).toBe(true);
    expect((await pitrWindow(repo, 'postgres', [])).schemaBreaks).toHaveLength(1);
  });

  it('with the DDL trigger, writes the statement into the stream in order and marks no break', async () => {
    const c = new pg.Client({ connectionString: src.url });
    await c.connect();
    await installDdlTrigger(c, DDL_MESSAGE_PREFIX);
    await c.end();
    await drain();
    const before = (await repo.listSegmentKeys('postgres')).at(-1)!;
    const after = (await repo.segmentSummary(before)).endLsn;
    await query(src.url, `ALTER TABLE settings ADD COLUMN note text`);
    await query(src.url, `INSERT INTO settings VALUES ('lang', 'it', 'set by hand')`);
    await drain();
    const txns = await read({ afterLsn: after });
    const kinds = txns.flatMap((t) => t.changes.map((ch) => ch.kind));
    expect(kinds).toEqual(['message', 'row']);
    const msg = txns[0]!.changes[0]!;
    expect(msg).toMatchObject({ kind: 'message', prefix: DDL_MESSAGE_PREFIX });
    expect(msg.kind === 'message' && msg.content).toContain('ADD COLUMN note');
    const newer = (await repo.listSegmentKeys('postgres')).filter((k) => k > before);
    for (const k of newer) expect((await repo.segmentSummary(k)).schemaBreak).toBeUndefined();
  });

  it('check finds a flipped byte in a segment; a dropped segment is a gap in the window', async () => {
    expect(await repo.checkSegments(true)).toEqual([]);
    const keys = await repo.listSegmentKeys('postgres');
    const victim = keys[1]!;
    const { readFileSync, writeFileSync } = await import('node:fs');
    const file = (repo.storage as LocalStorage).localFile(victim);
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x10;
    writeFileSync(file, bytes);
    const problems = await repo.check();
    expect(problems).toContainEqual(expect.objectContaining({ object: victim, kind: 'corrupt' }));
    await repo.storage.delete(victim);
    const w = await pitrWindow(repo, 'postgres', []);
    expect(w.gaps).toHaveLength(1);
    const first = (await repo.segmentSummary(keys[0]!)).startLsn;
    const feed = changeFeed(repo, {
      source: 'postgres',
      afterLsn: first,
      until: { time: new Date().toISOString() },
    });
    await expect(
      (async () => {
        for await (const _ of feed);
      })(),
    ).rejects.toThrow(/gap/);
  });

  it('forget drops the segments that end before the oldest base point, and no others', async () => {
    const w = repo.writer();
    const tree = await backupPostgres(w, {
      url: src.url,
      tenantKey: 'wedding_id',
      ceremonyDate: { table: 'weddings', column: 'ceremony_date' },
      changeSlot: true,
      slotPrefix: `${slot}_b`,
    });
    await w.flush();
    await w.close();
    await repo.saveSnapshot({
      type: 'full',
      tree: { postgres: tree },
      stats: w.stats,
      consistentPoint: { time: tree.snapshotTime, lsn: tree.lsn },
    });
    await query(src.url, `INSERT INTO guests (wedding_id, name) VALUES (2, 'after base')`);
    await drain();
    const before = await repo.listSegmentKeys('postgres');
    const [r] = await dropOldSegments([{ target: 'primary', storage: repo.storage }], masterKey, 'postgres');
    expect(r).toMatchObject({ target: 'primary' });
    expect(r!.dropped).toBeGreaterThan(0);
    const after = await repo.listSegmentKeys('postgres');
    expect(after.length).toBe(before.length - r!.dropped);
    const base = tree.changes!.lsn;
    for (const k of after)
      expect(compareLsn((await repo.segmentSummary(k)).endLsn, base)).toBeGreaterThanOrEqual(0);
    const names = (await read({ afterLsn: base }))
      .flatMap((t) => t.changes)
      .flatMap((c) => (c.kind === 'row' && c.table === 'guests' && c.new ? [c.new.name] : []));
    expect(names).toEqual(['after base']);
    await query(
      src.url,
      `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE $1`,
      [`${slot}_b%`],
    );
  });
});
