import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CorruptionError } from '../../../src/errors.js';
import { Capture, captureLag } from '../../../src/engine/pitr/capture.js';
import { changeObjects, replicateObjects } from '../../../src/engine/replicate.js';
import { REPO_KEY_OBJECT } from '../../../src/engine/repo/keys.js';
import { objectKind, openRepoKey, verifyObjectBytes } from '../../../src/engine/repo/objects.js';
import { Repository } from '../../../src/engine/repo/repository.js';
import { getBuffer } from '../../../src/storage/types.js';
import { LocalStorage } from '../../../src/storage/local.js';
import { WEDDING_SETTINGS } from '../../helpers/pitr.js';
import { createTempDatabase, query, type TempDatabase } from '../../helpers/pg.js';
import { tempDirsForFile } from '../../helpers/temp.js';

const tempDir = tempDirsForFile();

describe('change segments as repository objects: copy checks, replication, lag', () => {
  let src: TempDatabase;
  let repo: Repository;
  let dir: string;
  let capture: Capture;
  const masterKey = randomBytes(32);
  const slot = `wv_seg_${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    src = await createTempDatabase('pitr_segments');
    await query(
      src.url,
      `CREATE TABLE weddings (id int PRIMARY KEY, ceremony_date date); CREATE TABLE guests (id serial PRIMARY KEY,
        wedding_id int NOT NULL REFERENCES weddings, name text); INSERT INTO weddings VALUES (1, '2027-06-01'), (2, '2027-07-01')`,
    );
    dir = tempDir('wv-seg-');
    repo = await Repository.init(new LocalStorage('primary', dir), masterKey);
    // no other copy here: replication is what carries segments below
    capture = new Capture({
      url: src.url,
      source: 'postgres',
      slot,
      segmentBytes: 1 << 20,
      repo,
      copies: [],
      schema: WEDDING_SETTINGS,
    });
    await capture.step();
    for (let i = 0; i < 3; i++) {
      await query(src.url, `INSERT INTO guests (wedding_id, name) VALUES (1, 'a${i}'), (2, 'b${i}')`);
      await capture.step();
    }
  });
  afterAll(async () => {
    await capture.close();
    await query(src.url, 'SELECT pg_drop_replication_slot($1)', [slot]); // the slot holds WAL: never leave it
    await src.drop();
  });

  it('are their own object kind, verified by check and by a copy check', async () => {
    const keys = await repo.listSegmentKeys('postgres');
    expect(keys.length).toBeGreaterThanOrEqual(3);
    expect(objectKind(keys[0]!)).toBe('segment');
    const trust = { masterKey, ...openRepoKey(masterKey, await getBuffer(repo.storage, REPO_KEY_OBJECT)) };
    const bytes = readFileSync(path.join(dir, keys[0]!));
    expect(() => verifyObjectBytes(trust, keys[0]!, bytes)).not.toThrow();
    // a copy check (validate, repair) must not take a damaged segment for a sound one
    const damaged = Buffer.from(bytes);
    damaged[10] = damaged[10]! ^ 1;
    expect(() => verifyObjectBytes(trust, keys[0]!, damaged)).toThrow(CorruptionError);
    expect(await repo.check()).toEqual([]);
  });

  it('replication carries the segments a copy lacks, with their keys', async () => {
    const dest = new LocalStorage('second', tempDir('wv-seg2-'));
    const objects = await changeObjects(repo.storage);
    const keys = await repo.listSegmentKeys('postgres');
    expect(objects.map((o) => o.key)).toEqual(
      expect.arrayContaining([...keys, expect.stringMatching(/^keys\//)]),
    );
    const first = await replicateObjects(repo.storage, dest, objects);
    expect(first.copiedObjects).toBe(objects.length);
    await dest.delete(keys[1]!);
    const again = await replicateObjects(repo.storage, dest, await changeObjects(repo.storage));
    expect(again.copiedObjects).toBe(1);
    expect(await getBuffer(dest, keys[1]!)).toEqual(await getBuffer(repo.storage, keys[1]!));
  });

  it('captureLag reports the slot, and a missing one', async () => {
    await query(src.url, `INSERT INTO guests (wedding_id, name) VALUES (1, 'lag')`);
    const lag = await captureLag(src.url, slot);
    expect(lag.slotStatus).toBe('ok');
    expect(lag.lagBytes).toBeGreaterThan(0);
    await capture.step();
    expect(await captureLag(src.url, 'wv_no_such_slot')).toEqual({ lagBytes: 0, slotStatus: 'missing' });
  });
});
