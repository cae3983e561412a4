// Two backups of the same new files into one repository at once store the data once: writers take turns on the write lock.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect, it } from 'vitest';
import { filesSourceSchema, postgresSourceSchema } from '../../src/config/schema.js';
import { runBackup } from '../../src/engine/backup.js';
import { Repository } from '../../src/engine/repo/repository.js';
import { LocalStorage } from '../../src/storage/local.js';
import type { Storage } from '../../src/storage/types.js';
import { pseudoRandom, tempDirsPerTest } from './repo/helpers.js';

const dir = tempDirsPerTest();

async function dataBytes(storage: Storage): Promise<{ bytes: number; packs: number }> {
  let bytes = 0;
  let packs = 0;
  for await (const o of storage.list('data/')) {
    bytes += o.size;
    packs++;
  }
  return { bytes, packs };
}

it('two concurrent backups of the same new data into one repository store it once', async () => {
  const photos = await dir('wv-photos-');
  await mkdir(path.join(photos, 'w1'));
  for (let i = 0; i < 6; i++) {
    await writeFile(path.join(photos, 'w1', `img${i}.jpg`), pseudoRandom(400_000, 100 + i));
  }
  const masterKey = randomBytes(32);
  const backup = (storage: Storage, operationId: string) =>
    runBackup({
      storage,
      masterKey,
      type: 'files',
      components: ['files'],
      operationId,
      sources: {
        postgres: { ...postgresSourceSchema.parse({}), url: '', supplierKey: undefined, changeSlot: false },
        files: [filesSourceSchema.parse({ name: 'photos', path: photos })],
      },
    });

  const alone = new LocalStorage('alone', await dir('wv-alone-'));
  await Repository.init(alone, masterKey);
  await backup(alone, 'op-alone');
  const once = await dataBytes(alone);
  expect(once.bytes).toBeGreaterThan(6 * 400_000 * 0.9);

  const shared = new LocalStorage('shared', await dir('wv-shared-'));
  await Repository.init(shared, masterKey);
  const [a, b] = await Promise.all([backup(shared, 'op-a'), backup(shared, 'op-b')]);
  expect(a.snapshotId).not.toBe(b.snapshotId);
  // the second to take the lock found every blob already stored
  expect(Math.min(a.stats.blobsNew, b.stats.blobsNew)).toBe(0);
  expect(await dataBytes(shared)).toEqual(once);
  for (const out of [a, b]) {
    const repo = await Repository.open(shared, masterKey);
    expect((await repo.loadSnapshot(out.snapshotId)).tags.operation).toMatch(/^op-[ab]$/);
  }
  expect(await (await Repository.open(shared, masterKey)).check({ mode: 'full' })).toEqual([]);
});
