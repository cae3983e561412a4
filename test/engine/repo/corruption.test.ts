import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CorruptionError, NotFoundError, WrongKeyError } from '../../../src/errors.js';
import type { ContentRef } from '../../../src/engine/api.js';
import { Repository } from '../../../src/engine/repo/repository.js';
import { seeded } from '../../helpers/seeded.js';
import { newRepo, pseudoRandom, randomBytes, readBack, streamOf, type TestRepo } from './helpers.js';

const rng = seeded('repository corruption');

/** Either the exact original bytes, or a CorruptionError naming `object`: nothing else is acceptable. */
async function readOrCorruption(
  repo: Repository,
  ref: ContentRef,
  original: Buffer,
  object: string,
): Promise<'ok' | 'error'> {
  try {
    const got = await readBack(repo, ref);
    expect(got.equals(original)).toBe(true);
    return 'ok';
  } catch (err) {
    expect(err).toBeInstanceOf(CorruptionError);
    expect((err as CorruptionError).object).toBe(object);
    return 'error';
  }
}

/** The same through a file restore on an encoder thread (blobs read from the pack file there). */
async function writtenOrCorruption(
  repo: Repository,
  ref: ContentRef,
  original: Buffer,
  object: string,
  target: string,
): Promise<'ok' | 'error'> {
  await rm(target, { force: true });
  try {
    expect(await repo.reader().writeFile(ref, target)).toBe(true);
    expect((await readFile(target)).equals(original)).toBe(true);
    return 'ok';
  } catch (err) {
    expect(err).toBeInstanceOf(CorruptionError);
    expect((err as CorruptionError).object).toBe(object);
    expect(existsSync(target)).toBe(false); // nothing half-restored is left behind
    return 'error';
  }
}

describe('corruption and keys', () => {
  let t: TestRepo;
  let data: Buffer;
  let ref: ContentRef;
  let snapId: string;
  const file = (key: string) => path.join(t.dir, ...key.split('/'));
  const objects = async (prefix: string) => (await t.repo.listObjects(prefix)).map((o) => o.key);

  async function withFlippedBit<T>(key: string, pos: number, bit: number, fn: () => Promise<T>): Promise<T> {
    const orig = await readFile(file(key));
    const bad = Buffer.from(orig);
    bad[pos % bad.length]! ^= 1 << bit;
    await writeFile(file(key), bad);
    try {
      return await fn();
    } finally {
      await writeFile(file(key), orig);
    }
  }

  beforeAll(async () => {
    t = await newRepo();
    data = Buffer.concat([pseudoRandom(60_000, 11), Buffer.from('text compresses '.repeat(4000))]);
    const w = t.repo.writer();
    ref = await w.write('wedding:9', streamOf(data));
    await w.flush();
    await w.close();
    snapId = (await t.repo.saveSnapshot({ type: 'full', tree: { ref }, stats: w.stats })).id;
    expect(await objects('data/')).toHaveLength(1);
    expect(await objects('index/')).toHaveLength(1);
  });
  afterAll(() => t.cleanup());

  it('refuses a wrong master key with WrongKeyError', async () => {
    await expect(Repository.open(t.storage, randomBytes(32))).rejects.toThrow(WrongKeyError);
    await expect(Repository.open(t.storage, randomBytes(32))).rejects.toThrow(
      /wrong master key for repository/,
    );
  });

  it('a flipped bit anywhere in a pack: exact bytes or CorruptionError naming the pack; check reports it', async () => {
    const [pack] = await objects('data/');
    const size = (await readFile(file(pack!))).length;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: size - 1 }), fc.integer({ min: 0, max: 7 }), (pos, bit) =>
        withFlippedBit(pack!, pos, bit, async () => {
          const repo = await Repository.open(t.storage, t.masterKey);
          const streamed = await readOrCorruption(repo, ref, data, pack!);
          expect(await writtenOrCorruption(repo, ref, data, pack!, path.join(t.dir, 'restored'))).toBe(
            streamed,
          );
          const problems = await repo.check({ mode: 'full' });
          expect(problems.map((p) => [p.object, p.kind])).toContainEqual([pack, 'corrupt']);
        }),
      ),
      { numRuns: 60 },
    );
  });

  it('a file restore on a thread: a missing pack is NotFoundError, a cut one CorruptionError, nothing left behind', async () => {
    const [pack] = await objects('data/');
    const target = path.join(t.dir, 'restored-cut');
    const orig = await readFile(file(pack!));
    try {
      await writeFile(file(pack!), orig.subarray(0, orig.length >> 1));
      const repo = await Repository.open(t.storage, t.masterKey);
      await expect(repo.reader().writeFile(ref, target)).rejects.toThrow(
        expect.objectContaining({
          constructor: CorruptionError,
          object: pack,
          message: expect.stringMatching(/shorter than its index says/),
        }),
      );
      expect(existsSync(target)).toBe(false);
      await rm(file(pack!));
      await expect(repo.reader().writeFile(ref, target)).rejects.toThrow(NotFoundError);
      expect(existsSync(target)).toBe(false);
    } finally {
      await writeFile(file(pack!), orig);
    }
    const repo = await Repository.open(t.storage, t.masterKey);
    expect(await repo.reader().writeFile(ref, target)).toBe(true);
    expect((await readFile(target)).equals(data)).toBe(true);
    // never written through whatever is already there
    await expect(repo.reader().writeFile(ref, target)).rejects.toThrow(/EEXIST/);
    expect((await readFile(target)).equals(data)).toBe(true);
  });

  it('a flipped bit in an index: CorruptionError naming the index; check reports it', async () => {
    const [index] = await objects('index/');
    const size = (await readFile(file(index!))).length;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: size - 1 }), fc.integer({ min: 0, max: 7 }), (pos, bit) =>
        withFlippedBit(index!, pos, bit, async () => {
          const repo = await Repository.open(t.storage, t.masterKey);
          expect(await readOrCorruption(repo, ref, data, index!)).toBe('error');
          const problems = await repo.check();
          expect(problems).toContainEqual(expect.objectContaining({ object: index, kind: 'corrupt' }));
        }),
      ),
      { numRuns: 40 },
    );
  });

  it('a flipped bit in a snapshot: CorruptionError naming the snapshot; check reports it', async () => {
    const key = `snapshots/${snapId}`;
    const size = (await readFile(file(key))).length;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: size - 1 }), fc.integer({ min: 0, max: 7 }), (pos, bit) =>
        withFlippedBit(key, pos, bit, async () => {
          const repo = await Repository.open(t.storage, t.masterKey);
          await expect(repo.loadSnapshot(snapId)).rejects.toSatisfy(
            (e) => e instanceof CorruptionError && e.object === key,
          );
          expect(await repo.check()).toContainEqual(
            expect.objectContaining({ object: key, kind: 'corrupt' }),
          );
        }),
      ),
      { numRuns: 40 },
    );
  });

  it('a flipped bit in config or keys/repo never opens a wrong repository', async () => {
    for (const key of ['config', 'keys/repo']) {
      const size = (await readFile(file(key))).length;
      for (let i = 0; i < 30; i++) {
        const pos = rng.int(size);
        await withFlippedBit(key, pos, i % 8, async () => {
          try {
            const repo = await Repository.open(t.storage, t.masterKey);
            expect(await readBack(repo, ref)).toEqual(data); // the flip hit a field that needs no trust
          } catch (err) {
            expect(err instanceof CorruptionError || err instanceof WrongKeyError).toBe(true);
          }
        });
      }
    }
  });

  it('small blobs opened together in batches: a flipped byte fails its own blob only', async () => {
    const s = await newRepo();
    try {
      const w = s.repo.writer();
      const datas = Array.from({ length: 300 }, (_, i) => pseudoRandom(1000, 300 + i));
      // more blobs than one batch holds, all read at once
      const refs = await Promise.all(
        datas.map((d, i) => w.writeBuffer(`wedding:${i % 3}`, d, { compress: false })),
      );
      await w.flush();
      await w.close();
      const [pack] = (await s.repo.listObjects('data/')).map((o) => o.key);
      const packFile = path.join(s.dir, ...pack!.split('/'));
      const bad = await readFile(packFile);
      // inside one sealed blob (1000 bytes + nonce and tag), which one drawn from the seed
      const hit = rng.int(datas.length);
      bad[hit * (1000 + 28) + 20 + rng.int(1000)]! ^= 1 << rng.int(8);
      await writeFile(packFile, bad);
      const repo = await Repository.open(s.storage, s.masterKey);
      const results = await Promise.allSettled(refs.map((r) => readBack(repo, r)));
      const failed = results.filter((r) => r.status === 'rejected');
      expect(failed).toHaveLength(1);
      expect(failed[0]!.reason).toBeInstanceOf(CorruptionError);
      expect((failed[0]!.reason as CorruptionError).object).toBe(pack);
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') expect(r.value.equals(datas[i]!)).toBe(true);
      });
    } finally {
      await s.cleanup();
    }
  });

  it('detects swapped blobs inside a pack and a pack stored under another pack’s name', async () => {
    const s = await newRepo();
    try {
      const a = pseudoRandom(1000, 21);
      const b = pseudoRandom(1000, 22);
      const w = s.repo.writer();
      const ra = await w.write('platform', streamOf(a), { compress: false });
      const rb = await w.write('platform', streamOf(b), { compress: false });
      await w.flush();
      await w.close();
      const [pack] = (await s.repo.listObjects('data/')).map((o) => o.key);
      const packFile = path.join(s.dir, ...pack!.split('/'));
      const orig = await readFile(packFile);
      const len = (orig.length - 8 - orig.readUInt32LE(orig.length - 8)) / 2;
      const swapped = Buffer.concat([
        orig.subarray(len, 2 * len),
        orig.subarray(0, len),
        orig.subarray(2 * len),
      ]);
      await writeFile(packFile, swapped);
      const repo = await Repository.open(s.storage, s.masterKey);
      await expect(readBack(repo, ra)).rejects.toThrow(CorruptionError);
      await expect(readBack(repo, rb)).rejects.toThrow(CorruptionError);
      expect(await repo.check({ mode: 'full' })).toContainEqual(expect.objectContaining({ object: pack }));

      // A different, valid pack under this pack's name: content no longer matches the name.
      const w2 = s.repo.writer();
      await w2.write('platform', streamOf(pseudoRandom(3000, 23)));
      await w2.flush();
      await w2.close();
      const other = (await s.repo.listObjects('data/')).map((o) => o.key).find((k) => k !== pack)!;
      await writeFile(packFile, await readFile(path.join(s.dir, ...other.split('/'))));
      const repo2 = await Repository.open(s.storage, s.masterKey);
      await expect(readBack(repo2, ra)).rejects.toThrow(CorruptionError);
      expect(await repo2.check()).toContainEqual(expect.objectContaining({ object: pack, kind: 'corrupt' }));
    } finally {
      await s.cleanup();
    }
  });
});
