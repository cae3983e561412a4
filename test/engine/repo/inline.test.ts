import { expect, it } from 'vitest';
import { CorruptionError, NotFoundError } from '../../../src/errors.js';
import type { ContentRef } from '../../../src/engine/api.js';
import { INLINE_LIMIT } from '../../../src/engine/repo/inline.js';
import { Repository } from '../../../src/engine/repo/repository.js';
import { pseudoRandom, readBack, reposPerTest } from './helpers.js';

const repoFor = reposPerTest();

/** The same reference with one byte of its sealed content changed. */
function flipped(ref: ContentRef, at: number): ContentRef {
  const bytes = Buffer.from(ref.inline!, 'base64');
  bytes[at % bytes.length]! ^= 0x01;
  return { ...ref, inline: bytes.toString('base64') };
}

it('small content asked to be inline is sealed into its reference and reads back exactly', async () => {
  const t = await repoFor();
  const w = t.repo.writer();
  const rows = Buffer.from('42\t7\tGuest 1 of 7 Øyvind\tchanged\n'.repeat(12));
  const noise = pseudoRandom(INLINE_LIMIT, 3);
  const one = await w.writeBuffer('wedding:7', rows, { inline: true });
  const parts = await w.writeBuffer('wedding:7', [noise.subarray(0, 100), noise.subarray(100)], {
    inline: true,
  });
  const big = await w.writeBuffer('wedding:7', pseudoRandom(INLINE_LIMIT + 1, 4), { inline: true });
  const asked = await w.writeBuffer('wedding:7', rows);
  await w.flush();
  await w.close();

  expect(one).toMatchObject({ scope: 'wedding:7', blobs: [], size: rows.length });
  expect(parts).toMatchObject({ blobs: [], size: INLINE_LIMIT });
  // repetitive rows are compressed; nothing of the plaintext shows
  expect(Buffer.from(one.inline!, 'base64').length).toBeLessThan(rows.length / 2);
  expect(Buffer.from(one.inline!, 'base64').includes(Buffer.from('Guest'))).toBe(false);
  // too big, or not asked for: a blob as always
  expect(big.inline).toBeUndefined();
  expect(big.blobs).toHaveLength(1);
  expect(asked.inline).toBeUndefined();
  // counted as read and new, stored inside whatever holds the reference
  expect(w.stats.blobsNew).toBe(2);

  const fresh = await Repository.open(t.storage, t.masterKey);
  expect(await readBack(fresh, one)).toEqual(rows);
  expect(await fresh.reader().readBuffer(parts)).toEqual(noise);
  expect(await readBack(fresh, big)).toEqual(pseudoRandom(INLINE_LIMIT + 1, 4));
});

it("a changed byte or another size is corruption; another scope's or an erased scope's key is not found", async () => {
  const t = await repoFor();
  const w = t.repo.writer();
  const rows = Buffer.from('1\t5\tAda\n2\t5\tGrace\n'.repeat(8));
  const ref = await w.writeBuffer('wedding:5', rows, { inline: true });
  await w.writeBuffer('wedding:6', rows, { inline: true }); // so the other scope has a key
  await w.flush();
  await w.close();
  const reader = t.repo.reader();

  // every byte: key id, flags, nonce, body, tag
  const length = Buffer.from(ref.inline!, 'base64').length;
  for (let at = 0; at < length; at++) {
    const read = reader.readBuffer(flipped(ref, at));
    // a changed key id (or its length) names a key set that does not exist; the rest fails to open
    await expect(read, `byte ${at}`).rejects.toThrow(at <= 8 ? NotFoundError : CorruptionError);
  }
  // under another scope's name it names a key set that scope does not have
  await expect(reader.readBuffer({ ...ref, scope: 'wedding:6' })).rejects.toThrow(NotFoundError);
  await expect(reader.readBuffer({ ...ref, size: ref.size + 1 })).rejects.toThrow(/holds \d+ bytes/);
  await expect(reader.readBuffer({ ...ref, blobs: ['ab'.repeat(32)] })).rejects.toThrow(CorruptionError);

  // a check with data reads inline content too, and names the snapshot that holds a bad one
  const snap = await t.repo.saveSnapshot({
    type: 'full',
    tree: { good: ref, bad: flipped(ref, length - 1) },
    stats: w.stats,
  });
  expect(await t.repo.check({ mode: 'full' })).toEqual([
    expect.objectContaining({ object: `snapshots/${snap.id}`, kind: 'corrupt' }),
  ]);
  expect(await t.repo.check()).toEqual([]);

  await t.repo.eraseScope('wedding:5');
  const after = await Repository.open(t.storage, t.masterKey);
  await expect(after.reader().readBuffer(ref)).rejects.toThrow(NotFoundError);
  // erased content is unreadable by design, not a fault (the damaged one included)
  expect(await after.check({ mode: 'full' })).toEqual([]);
});
