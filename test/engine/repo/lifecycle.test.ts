import { afterEach, describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError } from '../../../src/errors.js';
import { activeLocks, RepoLock } from '../../../src/engine/repo/lock.js';
import { Repository } from '../../../src/engine/repo/repository.js';
import { LocalStorage } from '../../../src/storage/local.js';
import { deadPid, writeLockOf } from './lock-helpers.js';
import { newRepo, pseudoRandom, readBack, streamOf, tempDir, type TestRepo } from './helpers.js';
import { rm } from 'node:fs/promises';

describe('repository lifecycle', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });
  const repoFor = async () => {
    const t: TestRepo = await newRepo();
    cleanups.push(t.cleanup);
    return t;
  };

  it('openOrInit creates once, then opens the same repository', async () => {
    const t = await repoFor();
    const again = await Repository.openOrInit(t.storage, t.masterKey);
    expect(again.id).toBe(t.repo.id);
    expect(again.config.chunker).toEqual(t.repo.config.chunker);
    await expect(Repository.init(t.storage, t.masterKey)).rejects.toThrow(ConflictError);
  });

  it('a backup killed midway leaves a repository whose next backup and restore succeed', async () => {
    const t = await repoFor();
    const data = pseudoRandom(300_000, 31);
    // Killed after uploading some packs: no flush, no index, no snapshot, lock left behind (a
    // dead process's, which the next writer breaks).
    const dead = t.repo.writer({ packSize: 20_000, lock: false });
    await dead.write('wedding:5', streamOf(data.subarray(0, 200_000)));
    await writeLockOf(t.storage, await deadPid());
    expect((await t.repo.listObjects('data/')).length).toBeGreaterThan(0);
    expect(await t.repo.listSnapshots()).toEqual([]);

    const repo = await Repository.open(t.storage, t.masterKey);
    const w = repo.writer({ packSize: 20_000 });
    const ref = await w.write('wedding:5', streamOf(data));
    await w.flush();
    await w.close();
    const snap = await repo.saveSnapshot({ type: 'full', tree: { ref }, stats: w.stats });
    const fresh = await Repository.open(t.storage, t.masterKey);
    const loaded = await fresh.loadSnapshot(snap.id);
    expect((await readBack(fresh, (loaded.tree as { ref: typeof ref }).ref)).equals(data)).toBe(true);
    expect(await fresh.check({ mode: 'full' })).toEqual([]);
  });

  it('a writer that fails in the same process leaves no claim behind: the next one stores the blobs', async () => {
    const t = await repoFor();
    const data = pseudoRandom(150_000, 32);
    // claims every chunk, then closes without flushing: its packs are never indexed
    const failed = t.repo.writer({ packSize: 1 << 30 });
    await failed.write('wedding:6', streamOf(data));
    await failed.close();
    const w = t.repo.writer({ packSize: 20_000 });
    const ref = await w.write('wedding:6', streamOf(data));
    await w.flush();
    await w.close();
    expect(w.stats.blobsNew).toBe(w.stats.blobsTotal);
    const snap = await t.repo.saveSnapshot({ type: 'full', tree: { ref }, stats: w.stats });
    const fresh = await Repository.open(t.storage, t.masterKey);
    const loaded = await fresh.loadSnapshot(snap.id);
    expect((await readBack(fresh, (loaded.tree as { ref: typeof ref }).ref)).equals(data)).toBe(true);
  });

  it('stores big trees as content and keeps snapshots listable by tag', async () => {
    const t = await repoFor();
    const tree = {
      files: Array.from({ length: 20_000 }, (_, i) => ({
        path: `f/${i}.txt`,
        size: i,
        note: 'x'.repeat(20),
      })),
    };
    const stats = { bytesRead: 1, bytesNew: 1, bytesStored: 1, blobsTotal: 1, blobsNew: 1 };
    const s1 = await t.repo.saveSnapshot({ type: 'files', tree, stats, tags: { operation: 'op-1' } });
    expect(s1.treeRef).toBeDefined();
    const s2 = await t.repo.saveSnapshot({
      type: 'files',
      tree: { small: true },
      stats,
      parent: s1.id,
      tags: { operation: 'op-2' },
    });
    const fresh = await Repository.open(t.storage, t.masterKey);
    expect((await fresh.loadSnapshot(s1.id)).tree).toEqual(tree);
    expect((await fresh.listSnapshots()).map((s) => s.id)).toEqual([s1.id, s2.id]);
    expect((await fresh.findSnapshotByTag('operation', 'op-1'))?.id).toBe(s1.id);
    expect((await fresh.latestSnapshot({ type: 'files' }))?.parent).toBe(s1.id);
    expect(await fresh.findSnapshotByTag('operation', 'nope')).toBeUndefined();
  });

  it('objectsForSnapshot lists everything a copy needs to restore on its own', async () => {
    const t = await repoFor();
    const data = pseudoRandom(100_000, 41);
    const w = t.repo.writer();
    const ref = await w.write('supplier:3', streamOf(data));
    await w.flush();
    await w.close();
    const snap = await t.repo.saveSnapshot({ type: 'files', tree: { ref }, stats: w.stats });
    const objects = await t.repo.objectsForSnapshot(snap.id);
    const dir = await tempDir();
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const copy = new LocalStorage('copy', dir);
    for (const o of objects) await copy.put(o.key, await t.storage.get(o.key));
    const repo = await Repository.open(copy, t.masterKey);
    expect((await readBack(repo, ref)).equals(data)).toBe(true);
    expect(await repo.check({ mode: 'full' })).toEqual([]);
  });

  it('erasing a scope key (crypto-shredding) makes only that scope unreadable', async () => {
    const t = await repoFor();
    const a = pseudoRandom(20_000, 51);
    const w = t.repo.writer();
    const erased = await w.write('wedding:77', streamOf(a));
    const kept = await w.write('wedding:78', streamOf(a));
    await w.flush();
    await w.close();
    const before = await t.repo.listObjects('keys/bundles/');
    expect(before).toHaveLength(1); // one bundle holds every key set the backup created
    const removed = await t.repo.eraseScope('wedding:77');
    expect(removed).toEqual([before[0]!.key]);
    expect(await t.repo.listObjects('keys/bundles/')).toHaveLength(1); // rewritten without wedding:77
    const repo = await Repository.open(t.storage, t.masterKey);
    await expect(readBack(repo, erased)).rejects.toThrow(NotFoundError);
    expect((await readBack(repo, kept)).equals(a)).toBe(true);
    expect(await repo.check({ mode: 'full' })).toEqual([]);
  });

  it('two sessions creating one scope key at once both stay readable; later ones agree on one', async () => {
    const t = await repoFor();
    const other = await Repository.open(t.storage, t.masterKey);
    const [a, b, c] = [61, 62, 63].map((seed) => pseudoRandom(20_000, seed));
    // sessions without the write lock (as a snapshot's tree writer): nothing makes them take turns
    const w1 = t.repo.writer({ lock: false });
    const w2 = other.writer({ lock: false });
    const [r1, r2] = await Promise.all([
      w1.write('wedding:5', streamOf(a!)),
      w2.write('wedding:5', streamOf(b!)),
    ]);
    await Promise.all([w1.flush(), w2.flush()]);
    await Promise.all([w1.close(), w2.close()]);
    expect(await t.repo.listObjects('keys/bundles/')).toHaveLength(2); // a key set each
    const later = await Promise.all([1, 2].map(() => Repository.open(t.storage, t.masterKey)));
    const refs = [];
    for (const repo of later) {
      const w = repo.writer();
      refs.push(await w.write('wedding:5', streamOf(c!)));
      await w.flush();
      await w.close();
    }
    expect(refs[0]!.blobs).toEqual(refs[1]!.blobs); // same key set chosen, so the same blob ids
    expect((await readBack(later[0]!, r1)).equals(a!)).toBe(true);
    expect((await readBack(later[0]!, r2)).equals(b!)).toBe(true);
    expect(await later[1]!.check({ mode: 'full' })).toEqual([]);
    expect(await later[1]!.eraseScope('wedding:5')).toHaveLength(2);
    const after = await Repository.open(t.storage, t.masterKey);
    for (const ref of [r1, r2, refs[0]!]) await expect(readBack(after, ref)).rejects.toThrow(NotFoundError);
  });

  it('locks: an exclusive lock blocks writers, expired locks are ignored and removed', async () => {
    const t = await repoFor();
    const ex = await RepoLock.acquire(t.storage, { exclusive: true });
    const w = t.repo.writer({ lockWaitMs: 0 });
    await expect(w.write('platform', streamOf(Buffer.from('x')))).rejects.toThrow(ConflictError);
    await ex.release();
    const stale = await RepoLock.acquire(t.storage, { exclusive: true, ttlMs: 1 });
    await new Promise((r) => setTimeout(r, 5));
    const shared = await RepoLock.acquire(t.storage);
    expect((await activeLocks(t.storage)).map((l) => l.id)).toEqual([shared.info.id]);
    await shared.release();
    await stale.release();
  });
});
