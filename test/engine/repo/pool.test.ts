import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { expect, it } from 'vitest';
import { EncodePool, type EncodeItem, type EncodedBatch } from '../../../src/engine/repo/encode-pool.js';
import { Repository } from '../../../src/engine/repo/repository.js';
import { LocalStorage } from '../../../src/storage/local.js';
import { pseudoRandom, readBack, SMALL_CHUNKER, streamOf, tempDir } from './helpers.js';

/** A real pool of one thread that counts the batches it seals and opens. */
class CountingPool extends EncodePool {
  sealed = 0;
  opened = 0;
  override encode(data: Buffer, items: EncodeItem[]): Promise<EncodedBatch> {
    this.sealed += items.length;
    return super.encode(data, items);
  }
  override decodeBatch(
    ...args: Parameters<EncodePool['decodeBatch']>
  ): ReturnType<EncodePool['decodeBatch']> {
    this.opened += args[0].length;
    return super.decodeBatch(...args);
  }
}

it('a repository seals and opens its blobs on the encoder pool it was opened with', async () => {
  const dir = await tempDir();
  const pool = new CountingPool(1);
  try {
    const storage = new LocalStorage('pool', dir);
    const masterKey = randomBytes(32);
    await Repository.init(storage, masterKey, { chunker: SMALL_CHUNKER });
    const repo = await Repository.open(storage, masterKey, { pool });
    const data = pseudoRandom(200_000, 7);
    const w = repo.writer();
    const ref = await w.write('wedding:1', streamOf(data));
    await w.flush();
    await w.close();
    expect(pool.sealed).toBe(ref.blobs.length);
    expect((await readBack(repo, ref)).equals(data)).toBe(true);
    expect(pool.opened).toBe(ref.blobs.length);
  } finally {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  }
});
