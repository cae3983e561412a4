import { cpSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { ContentRef } from '../../../src/engine/api.js';
import { decodeIndex, INDEX_PREFIX } from '../../../src/engine/repo/index.js';
import { deriveMetaKeys, unwrapRepoKey } from '../../../src/engine/repo/keys.js';
import { packIdOf } from '../../../src/engine/repo/pack.js';
import { RecordListWriter } from '../../../src/engine/repo/records.js';
import { Repository } from '../../../src/engine/repo/repository.js';
import { blobIdBatches } from '../../../src/engine/repo/snapshot.js';
import { ConflictError, NotFoundError } from '../../../src/errors.js';
import { createStorage } from '../../../src/storage/factory.js';
import { LocalStorage } from '../../../src/storage/local.js';
import {
  getBuffer,
  type Body,
  type ByteRange,
  type ObjectInfo,
  type PutOptions,
  type Storage,
} from '../../../src/storage/types.js';
import { startS3 } from '../../helpers/emulators.js';
import { pseudoRandom, readBack, SMALL_CHUNKER, streamOf, tempDir } from './helpers.js';

const PACK = 20_000;

/** Passes every call through; `before` runs ahead of each put and delete (a fault, or a gate). */
class Wrapped implements Storage {
  before: (op: 'put' | 'delete', key: string) => Promise<void> | void = () => undefined;
  constructor(readonly inner: LocalStorage) {}
  get name() {
    return this.inner.name;
  }
  async put(key: string, body: Body, opts?: PutOptions) {
    await this.before('put', key);
    await this.inner.put(key, body, opts);
  }
  get(key: string, range?: ByteRange) {
    return this.inner.get(key, range);
  }
  stat(key: string): Promise<ObjectInfo> {
    return this.inner.stat(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  async delete(key: string) {
    await this.before('delete', key);
    await this.inner.delete(key);
  }
  sync() {
    return this.inner.sync();
  }
}

interface Point {
  id: string;
  /** What each content reference of its tree must read back as. */
  contents: [ContentRef, Buffer][];
}

interface Built {
  dir: string;
  storage: Wrapped;
  masterKey: Buffer;
  points: Point[];
}

async function build(count = 6): Promise<Built> {
  const dir = await tempDir('wv-prune-');
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const storage = new Wrapped(new LocalStorage('test', dir));
  const masterKey = pseudoRandom(32, 99);
  const repo = await Repository.init(storage, masterKey, { chunker: SMALL_CHUNKER });
  const shared = pseudoRandom(60_000, 7);
  const points: Point[] = [];
  for (let i = 0; i < count; i++) points.push(await backup(repo, shared, i));
  return { dir, storage, masterKey, points };
}

/** One point: content shared by every point, its own, and a record list naming a wedding's segment. */
async function backup(
  repo: Repository,
  shared: Buffer,
  i: number,
  w = repo.writer({ packSize: PACK }),
): Promise<Point> {
  const own = pseudoRandom(80_000, 1000 + i);
  const segment = pseudoRandom(30_000 + i, 2000 + i);
  const contents: [ContentRef, Buffer][] = [];
  contents.push([await w.write('platform', streamOf(shared)), shared]);
  contents.push([await w.write(`wedding:${i}`, streamOf(own)), own]);
  const list = new RecordListWriter<{ tenant: number; ref: ContentRef }>(w);
  const segRef = await w.write(`wedding:${i}`, streamOf(segment));
  await list.push({ tenant: i, ref: segRef });
  contents.push([segRef, segment]);
  const segmentList = await list.end();
  await w.flush();
  const snap = await repo.saveSnapshot({
    type: 'full',
    tree: { refs: contents.slice(0, 2).map(([r]) => r), segmentList },
    stats: w.stats,
  });
  await w.close();
  return { id: snap.id, contents };
}

async function open(b: Built): Promise<Repository> {
  return Repository.open(b.storage.inner, b.masterKey);
}

/** Every point restores byte for byte, and the segment list still names its segment. */
async function expectRestores(repo: Repository, points: Point[]): Promise<void> {
  for (const p of points) {
    const snap = await repo.loadSnapshot(p.id);
    const tree = snap.tree as { segmentList: ContentRef };
    expect((await readBack(repo, tree.segmentList)).toString()).toContain(p.contents[2]![0].blobs[0]!);
    for (const [ref, bytes] of p.contents) expect((await readBack(repo, ref)).equals(bytes)).toBe(true);
  }
}

/** Index entries no snapshot names, and packs no index names: what a complete prune leaves none of. */
async function unreferenced(b: Built): Promise<{ blobs: number; packs: number }> {
  const repo = await open(b);
  const storage = b.storage.inner;
  const named = new Set<string>();
  for (const s of await repo.listSnapshots()) {
    const snap = await repo.loadSnapshot(s.id);
    for (const id of snap.treeRef?.blobs ?? []) named.add(id);
    for await (const batch of blobIdBatches(snap.tree, repo.reader())) for (const id of batch) named.add(id);
  }
  const { repoKey } = unwrapRepoKey(b.masterKey, await getBuffer(storage, 'keys/repo'));
  const meta = deriveMetaKeys(repoKey).meta;
  const indexed = new Set<string>();
  let blobs = 0;
  for await (const o of storage.list(INDEX_PREFIX)) {
    for (const p of decodeIndex(meta, o.key, await getBuffer(storage, o.key))) {
      indexed.add(p.id);
      blobs += p.blobs.filter((e) => !named.has(e.id)).length;
    }
  }
  let packs = 0;
  for await (const o of storage.list('data/')) if (!indexed.has(packIdOf(o.key))) packs++;
  return { blobs, packs };
}

async function sizeOf(storage: Storage, prefix: string): Promise<number> {
  let n = 0;
  for await (const o of storage.list(prefix)) n += o.size;
  return n;
}

/** Forgets every other point; the kept ones. */
async function forgetHalf(b: Built): Promise<Point[]> {
  const repo = await open(b);
  const gone = b.points.filter((_, i) => i % 2 === 0);
  await repo.forgetSnapshots(gone.map((p) => p.id));
  return b.points.filter((_, i) => i % 2 === 1);
}

/**
 * A backup of `b` that has written packs and waits, before its first index, until `openGate()`:
 * with or without its write lock.
 */
async function pausedBackup(b: Built, lock: boolean) {
  const repo = await Repository.open(b.storage, b.masterKey);
  let openGate!: () => void;
  const gate = new Promise<void>((r) => (openGate = r));
  let packsWritten = 0;
  b.storage.before = async (op, key) => {
    if (op === 'put' && key.startsWith('data/')) packsWritten++;
    if (op === 'put' && key.startsWith(INDEX_PREFIX)) await gate;
  };
  const w = repo.writer({ packSize: PACK, indexEvery: 1000, ...(lock ? {} : { lock: false }) });
  const running = backup(repo, pseudoRandom(60_000, 7), 9, w);
  while (packsWritten === 0) await sleep(10);
  await sleep(200);
  return { running, openGate };
}

describe('prune', () => {
  it('after forgetting half the points, frees space; the rest restore exactly and check clean; a second prune has nothing to do', async () => {
    const b = await build();
    const kept = await forgetHalf(b);
    const before = await sizeOf(b.storage.inner, 'data/');
    const progress: string[] = [];
    const repo = await open(b);
    const dry = await repo.prune({ dryRun: true, graceMs: 0, repackThreshold: 0 });
    expect(await sizeOf(b.storage.inner, 'data/')).toBe(before);
    const r = await repo.prune({
      graceMs: 0,
      repackThreshold: 0,
      onProgress: (p) => progress.push(p.phase),
    });

    expect(r.snapshots).toBe(3);
    expect(r.bytesFreed).toBeGreaterThan(0);
    expect(r.packsDeleted).toBeGreaterThan(0);
    expect(r.blobsRemoved).toBe(dry.blobsRemoved);
    expect(before - (await sizeOf(b.storage.inner, 'data/'))).toBe(r.bytesFreed);
    expect(new Set(progress)).toContain('mark');
    expect(await repo.check({ mode: 'full' })).toEqual([]);
    await expectRestores(await open(b), kept);
    expect(await unreferenced(b)).toEqual({ blobs: 0, packs: 0 });

    const again = await (await open(b)).prune({ graceMs: 0, repackThreshold: 0 });
    expect(again).toMatchObject({
      packsDeleted: 0,
      packsRepacked: 0,
      blobsRemoved: 0,
      indexesWritten: 0,
      orphansDeleted: 0,
    });
  });

  it('repacks the used blobs of packs shared with a forgotten point, as they are, into packs of the size asked', async () => {
    const b = await build(0);
    const repo = await open(b);
    // one session, big packs: each holds blobs of both points; 1000 tiny blobs (one each) fill a
    // pack's header room before its bytes
    const both = repo.writer({ packSize: 1 << 20 });
    const small = Array.from({ length: 1000 }, (_, i) => pseudoRandom(20, 100 + i));
    const smallRefs = [];
    for (const x of small) smallRefs.push(await both.writeBuffer('platform', x));
    const dropped = await both.write('wedding:2', streamOf(pseudoRandom(90_000, 12)));
    await both.flush();
    await both.close();
    const stats = both.stats;
    const gone = await repo.saveSnapshot({ type: 'full', tree: { refs: [...smallRefs, dropped] }, stats });
    const kept = await repo.saveSnapshot({ type: 'full', tree: { refs: smallRefs }, stats });
    await repo.forgetSnapshots([gone.id]);
    const r = await repo.prune({ graceMs: 0, repackThreshold: 0, packSize: 30_000 });
    expect(r.packsRepacked).toBeGreaterThan(0);
    expect(r.packsWritten).toBeGreaterThanOrEqual(2);
    expect(await (await open(b)).check({ mode: 'full' })).toEqual([]);
    const after = await open(b);
    const tree = (await after.loadSnapshot(kept.id)).tree as { refs: ContentRef[] };
    for (const [i, ref] of tree.refs.entries())
      expect((await readBack(after, ref)).equals(small[i]!)).toBe(true);
    expect(await unreferenced(b)).toEqual({ blobs: 0, packs: 0 });
  });

  it('a repository object opened before a prune elsewhere stores again what the prune removed', async () => {
    const b = await build(0);
    const early = await Repository.open(b.storage, b.masterKey);
    const shared = pseudoRandom(60_000, 7);
    const first = await backup(early, shared, 1);
    await (await open(b)).forgetSnapshots([first.id]);
    expect((await (await open(b)).prune({ graceMs: 0 })).packsDeleted).toBeGreaterThan(0);
    // the same content again through the object whose index still lists the pruned blobs
    const second = await backup(early, shared, 1);
    expect(await (await open(b)).check({ mode: 'full' })).toEqual([]);
    await expectRestores(await open(b), [second]);
  });

  it('keeps a pack whose unused share is under the threshold, and forgetting is idempotent', async () => {
    const b = await build(2);
    const repo = await open(b);
    await repo.forgetSnapshots([b.points[0]!.id]);
    await repo.forgetSnapshots([b.points[0]!.id]);
    const r = await repo.prune({ graceMs: 0, repackThreshold: 1 });
    expect(r.packsRepacked).toBe(0);
    expect(r.packsDeleted).toBeGreaterThan(0);
    expect(await repo.check({ mode: 'full' })).toEqual([]);
    await expectRestores(await open(b), [b.points[1]!]);
  });

  it('killed after any number of writes and deletes, leaves a repository that checks clean; the next prune finishes', async () => {
    for (let point = 1; point <= 10; point++) {
      const b = await build(4);
      const kept = await forgetHalf(b);
      // how many puts and deletes a whole prune of this repository makes (on a copy; pack layouts
      // differ between builds, as uploads run in parallel)
      const copy = `${b.dir}-count`;
      cpSync(b.dir, copy, { recursive: true });
      onTestFinished(() => rm(copy, { recursive: true, force: true }));
      const counting = new Wrapped(new LocalStorage('count', copy));
      let ops = 0;
      counting.before = () => void ops++;
      await (await Repository.open(counting, b.masterKey)).prune({ graceMs: 0, repackThreshold: 0 });
      expect(ops).toBeGreaterThan(10);
      // the first five ops one by one (the lock, new packs, the new index, the first deletes), then
      // spread over the rest up to the last pack deletes
      const killAt = point <= 5 ? point : Math.round(5 + ((point - 5) * (ops - 5)) / 6);
      let n = 0;
      b.storage.before = (op, key) => {
        if (++n >= killAt) throw new Error(`killed at ${op} ${key}`);
      };
      const killed = await Repository.open(b.storage, b.masterKey);
      await expect(killed.prune({ graceMs: 0, repackThreshold: 0 })).rejects.toThrow(/killed/);
      // the killed process's lock: the next one breaks it once the process is gone
      for await (const o of b.storage.inner.list('locks/')) await b.storage.inner.delete(o.key);

      expect(await (await open(b)).check({ mode: 'full' }), `killed at op ${killAt}`).toEqual([]);
      await expectRestores(await open(b), kept);
      await (await open(b)).prune({ graceMs: 0, repackThreshold: 0 });
      expect(await (await open(b)).check({ mode: 'full' })).toEqual([]);
      await expectRestores(await open(b), kept);
      expect(await unreferenced(b), `killed at op ${killAt}`).toEqual({ blobs: 0, packs: 0 });
    }
  }, 120_000);

  it('waits for a running backup’s write lock; the backup’s point restores exactly', async () => {
    const b = await build(2);
    await forgetHalf(b);
    const { running, openGate } = await pausedBackup(b, true);

    await expect((await open(b)).prune({ graceMs: 0 })).rejects.toThrow(ConflictError);
    const pruning = (await open(b)).prune({ graceMs: 0, lockWaitMs: 60_000, repackThreshold: 0 });
    let pruned = false;
    pruning.then(
      () => (pruned = true),
      () => undefined,
    );
    await sleep(1500);
    expect(pruned).toBe(false);
    openGate();
    const point = await running;
    const r = await pruning;
    expect(r.snapshots).toBe(2);
    expect(await (await open(b)).check({ mode: 'full' })).toEqual([]);
    await expectRestores(await open(b), [b.points[1]!, point]);
  });

  it('never deletes the packs of a writer without a lock while they are younger than the grace period', async () => {
    const b = await build(2);
    await forgetHalf(b);
    const { running, openGate } = await pausedBackup(b, false);

    // its packs are in no index: orphans to a prune, but new ones
    const r = await (await open(b)).prune({ repackThreshold: 0 });
    expect(r.packsTooYoung).toBeGreaterThan(0);
    openGate();
    const point = await running;
    expect(await (await open(b)).check({ mode: 'full' })).toEqual([]);
    await expectRestores(await open(b), [b.points[1]!, point]);
  });

  it('removes an erased scope’s blobs though a point names them; the point reads them as not found and checks clean', async () => {
    const b = await build(2);
    const repo = await open(b);
    await repo.eraseScope('wedding:0');
    const r = await repo.prune({ graceMs: 0, repackThreshold: 0 });
    expect(r.erasedBlobs).toBeGreaterThan(0);
    const after = await open(b);
    expect(await after.check({ mode: 'full' })).toEqual([]);
    const [ref] = b.points[0]!.contents[1]!;
    await expect(readBack(after, ref)).rejects.toThrow(NotFoundError);
    await expectRestores(after, [b.points[1]!]);
    expect((await after.prune({ graceMs: 0, repackThreshold: 0 })).blobsRemoved).toBe(0);
  });
});

it('on S3 (s3rver): prunes the forgotten point, the other restores exactly and checks clean', async () => {
  const s3 = await startS3({ name: 's3-prune' });
  onTestFinished(() => s3.stop());
  const storage = createStorage(s3.target, s3.env);
  const repo = await Repository.init(storage, pseudoRandom(32, 5), { chunker: SMALL_CHUNKER });
  const shared = pseudoRandom(60_000, 7);
  const points = [await backup(repo, shared, 0), await backup(repo, shared, 1)];
  await repo.forgetSnapshots([points[0]!.id]);
  const before = await sizeOf(storage, 'data/');
  const r = await repo.prune({ graceMs: 0, repackThreshold: 0 });
  expect(r.bytesFreed).toBeGreaterThan(0);
  expect(before - (await sizeOf(storage, 'data/'))).toBe(r.bytesFreed);
  const again = await Repository.open(storage, pseudoRandom(32, 5));
  expect(await again.check({ mode: 'full' })).toEqual([]);
  await expectRestores(again, [points[1]!]);
  expect((await again.prune({ graceMs: 0, repackThreshold: 0 })).blobsRemoved).toBe(0);
}, 60_000);
