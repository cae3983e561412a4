import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicateObjects } from '../../src/engine/replicate.js';
import { Repository } from '../../src/engine/repo/repository.js';
import { backupFiles, restoreFiles, type FileEntry } from '../../src/engine/sources/files.js';
import { fullVerify, type Copy } from '../../src/engine/verify-full.js';
import { createStorage } from '../../src/storage/factory.js';
import { LocalStorage } from '../../src/storage/local.js';
import { getBuffer, type Storage } from '../../src/storage/types.js';
import { startAzurite, startGcs, startS3, type Emulator } from '../helpers/emulators.js';

const masterKey = randomBytes(32);
const source = mkdtempSync(path.join(tmpdir(), 'wv-vf-src-'));
const emulators: Emulator[] = [];
let origin: Storage;
let stores: Record<string, () => Storage>;
let objects: { key: string; size: number }[];
let pointId: string;
let entries: FileEntry[];

async function backup(repo: Repository, dir: string) {
  const w = repo.writer({ packSize: 96 * 1024 });
  const e = await backupFiles(w, { dir });
  await w.flush();
  await w.close();
  return {
    entries: e,
    snap: await repo.saveSnapshot({ type: 'files', tree: { files: { files: e } }, stats: w.stats }),
  };
}

beforeAll(async () => {
  mkdirSync(path.join(source, 'album'));
  for (let i = 0; i < 6; i++) writeFileSync(path.join(source, 'album', `p${i}.jpg`), randomBytes(120_000));
  origin = new LocalStorage('origin', mkdtempSync(path.join(tmpdir(), 'wv-vf-origin-')));
  const repo = await Repository.init(origin, masterKey);
  const other = mkdtempSync(path.join(tmpdir(), 'wv-vf-other-'));
  writeFileSync(path.join(other, 'menu.txt'), 'older point');
  await backup(repo, other); // a second index object, for the stale-index case
  const b = await backup(repo, source);
  entries = b.entries;
  pointId = b.snap.id;
  objects = await repo.objectsForSnapshot(pointId);
  const [s3, gcs, azure] = await Promise.all([
    startS3({ name: 's3' }),
    startGcs({ name: 'gcs' }),
    startAzurite({ name: 'azure' }),
  ]);
  emulators.push(s3, gcs, azure);
  const env = { ...process.env, ...s3.env, ...gcs.env, ...azure.env };
  let n = 0;
  stores = {
    local: () => new LocalStorage('local', mkdtempSync(path.join(tmpdir(), 'wv-vf-local-'))),
    s3: () => createStorage({ ...s3.target, prefix: `r${n++}/` }, env),
    gcs: () => createStorage({ ...gcs.target, prefix: `r${n++}/` }, env),
    azure: () => createStorage({ ...azure.target, prefix: `r${n++}/` }, env),
  };
}, 120_000);

afterAll(async () => {
  await Promise.all(emulators.map((e) => e.stop()));
});

type Damage = (victim: Storage) => Promise<string>;
const pack = () => objects.filter((o) => o.key.startsWith('data/'))[0]!.key;
const damages: Record<string, [Damage, string[]]> = {
  'flipped byte': [
    async (v) => {
      const b = await getBuffer(v, pack());
      b[Math.floor(b.length / 2)]! ^= 0x10;
      await v.put(pack(), b);
      return pack();
    },
    ['corrupt'],
  ],
  truncated: [
    async (v) => {
      const b = await getBuffer(v, pack());
      await v.put(pack(), b.subarray(0, b.length - 100));
      return pack();
    },
    ['size'],
  ],
  missing: [
    async (v) => {
      await v.delete(pack());
      return pack();
    },
    ['missing'],
  ],
  swapped: [
    async (v) => {
      const packs = objects.filter((o) => o.key.startsWith('data/'));
      const other = await getBuffer(v, packs[1]!.key);
      await v.put(packs[0]!.key, other);
      return packs[0]!.key;
    },
    ['size', 'corrupt'],
  ],
  'stale index': [
    async (v) => {
      const indexes = objects.filter((o) => o.key.startsWith('index/'));
      const all: string[] = [];
      for await (const o of origin.list('index/')) all.push(o.key);
      const older = all.find((k) => !indexes.some((i) => i.key === k))!;
      await v.put(indexes[0]!.key, await getBuffer(origin, older));
      return indexes[0]!.key;
    },
    ['size', 'corrupt'],
  ],
  'wrong key': [
    async (v) => {
      const foreign = new LocalStorage('foreign', mkdtempSync(path.join(tmpdir(), 'wv-vf-foreign-')));
      await Repository.init(foreign, randomBytes(32));
      await v.put('keys/repo', await getBuffer(foreign, 'keys/repo'));
      return 'keys/repo';
    },
    ['size', 'corrupt', 'wrong_key'],
  ],
};

describe.each(['local', 's3', 'gcs', 'azure'])('full verification on %s', (provider) => {
  it.each(Object.keys(damages))(
    '%s: detected, named, repaired from a healthy copy, restorable',
    async (name) => {
      const victim = stores[provider]!();
      const healthy = stores.local!();
      await replicateObjects(origin, victim, objects);
      await replicateObjects(origin, healthy, objects);
      const [damage, kinds] = damages[name]!;
      const object = await damage(victim);
      const copies: Copy[] = [
        { target: 'victim', storage: victim },
        { target: 'healthy', storage: healthy },
      ];

      const seen = await fullVerify(copies, masterKey, pointId, objects);
      const mine = seen.problems.filter((p) => p.target === 'victim');
      expect(mine.map((p) => p.object)).toContain(object);
      expect(kinds).toContain(mine.find((p) => p.object === object)!.kind);
      expect(seen.problems.filter((p) => p.target === 'healthy')).toEqual([]);

      const fixed = await fullVerify(copies, masterKey, pointId, objects, { repair: true });
      expect(fixed.repairs).toContainEqual({ target: 'victim', object, from: 'healthy' });
      expect(fixed.problems.every((p) => p.repaired)).toBe(true);
      expect((await fullVerify(copies, masterKey, pointId, objects)).problems).toEqual([]);

      const out = mkdtempSync(path.join(tmpdir(), 'wv-vf-out-'));
      await restoreFiles((await Repository.open(victim, masterKey)).reader(), entries, { targetDir: out });
      for (let i = 0; i < 6; i++) {
        const rel = path.join('album', `p${i}.jpg`);
        expect(readFileSync(path.join(out, rel)).equals(readFileSync(path.join(source, rel)))).toBe(true);
      }
    },
  );

  it('reports damage as unrepairable when no healthy copy exists', async () => {
    const a = stores[provider]!();
    const b = stores.local!();
    await replicateObjects(origin, a, objects);
    await replicateObjects(origin, b, objects);
    for (const s of [a, b]) await damages['flipped byte']![0](s);
    const r = await fullVerify(
      [
        { target: 'a', storage: a },
        { target: 'b', storage: b },
      ],
      masterKey,
      pointId,
      objects,
      { repair: true },
    );
    expect(r.repairs).toEqual([]);
    expect(r.problems.map((p) => [p.target, p.object, p.repaired])).toEqual([
      ['a', pack(), false],
      ['b', pack(), false],
    ]);
  });
});
