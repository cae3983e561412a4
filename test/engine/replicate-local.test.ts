// Replication to a local target whose directory is replaced mid-way: the copy goes on, and a retry completes it.
import { mkdirSync, renameSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { TransientError } from '../../src/errors.js';
import { afterEach, expect, it } from 'vitest';
import { targetSchema } from '../../src/config/schema.js';
import { replicateObjects } from '../../src/engine/replicate.js';
import { Repository } from '../../src/engine/repo/repository.js';
import { createStorage } from '../../src/storage/factory.js';
import { newRepo, pseudoRandom, readBack, streamOf, tempDir } from './repo/helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

it('a local target directory replaced during replication: the run goes on, and the retry completes the copy', async () => {
  const src = await newRepo();
  cleanups.push(src.cleanup);
  const data = pseudoRandom(400_000, 71);
  const w = src.repo.writer({ packSize: 30_000 });
  const ref = await w.write('wedding:7', streamOf(data));
  await w.flush();
  await w.close();
  const snap = await src.repo.saveSnapshot({ type: 'full', tree: { ref }, stats: w.stats });
  const objects = await src.repo.objectsForSnapshot(snap.id);
  expect(objects.length).toBeGreaterThan(8);

  const root = await tempDir('wv-replica-');
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  cleanups.push(() => rm(`${root}.old`, { recursive: true, force: true }));
  const dest = createStorage(targetSchema.parse({ type: 'local', name: 'replica', path: root }), {});
  // one object at a time, so no put is half-way when the directory is swapped
  let swapped = false;
  const first = await replicateObjects(src.storage, dest, objects, {
    concurrency: 1,
    onProgress: ({ objects: n }) => {
      if (n !== 3 || swapped) return;
      swapped = true;
      renameSync(root, `${root}.old`); // an operator replaces the directory with a new, empty one
      mkdirSync(root);
    },
  }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
  expect(swapped).toBe(true);
  // Every write after the swap went through. The objects copied before it went with the old
  // directory; the sync before the indexes may find a directory of theirs gone and say so as a
  // transient failure (never "not found"), so the snapshot is not copied over missing objects.
  if (first instanceof Error) expect(first).toBeInstanceOf(TransientError);
  else expect(first.copiedObjects).toBe(objects.length);

  const again = await replicateObjects(src.storage, dest, objects, { concurrency: 1 });
  expect(again.copiedObjects).toBeGreaterThanOrEqual(3);
  expect(again.skippedObjects).toBeGreaterThan(0);
  const copy = await Repository.open(dest, src.masterKey);
  expect(await copy.check({ mode: 'full' })).toEqual([]);
  const loaded = await copy.loadSnapshot(snap.id);
  expect((await readBack(copy, (loaded.tree as { ref: typeof ref }).ref)).equals(data)).toBe(true);
  expect((await replicateObjects(src.storage, dest, objects)).copiedObjects).toBe(0);
});
