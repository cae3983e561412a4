import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ContentReader, ContentRef } from '../../../src/engine/api.js';
import type { BlobEntry } from '../../../src/engine/repo/blob.js';
import { IdTable } from '../../../src/engine/repo/id-table.js';
import { RepoIndex } from '../../../src/engine/repo/index.js';
import { hold } from '../../../src/engine/repo/buffers.js';
import { PackBuilder, parsePackHeader } from '../../../src/engine/repo/pack.js';
import { readRecords, RecordListWriter } from '../../../src/engine/repo/records.js';
import { MemoryContent } from '../../helpers/memory-content.js';

const id = (bytes: Buffer) => bytes.toString('hex');

describe('blob id table', () => {
  it('answers as a Set does, ids sharing their first bytes included', () => {
    const idArb = fc
      .tuple(fc.constantFrom(0, 1, 2), fc.uint8Array({ minLength: 28, maxLength: 28 }))
      .map(([head, tail]) => Buffer.concat([Buffer.from([head, 0, 0, 0]), Buffer.from(tail)]));
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), idArb), { maxLength: 300 }), (ops) => {
        const table = new IdTable();
        const set = new Set<string>();
        for (const [add, bytes] of ops) {
          const hex = id(bytes);
          if (add && !set.has(hex)) {
            expect(table.add(hex)).toBe(set.size);
            set.add(hex);
          }
          expect(table.find(bytes) >= 0).toBe(set.has(hex));
          expect(table.find(hex) >= 0).toBe(set.has(hex));
        }
        expect(table.count).toBe(set.size);
        [...set].forEach((hex, n) => expect(table.find(hex)).toBe(n));
      }),
    );
  });

  it('refuses an id of the wrong length and finds nothing for one', () => {
    const table = new IdTable();
    expect(() => table.add('abcd')).toThrow(RangeError);
    expect(table.find('abcd')).toBe(-1);
  });
});

describe('repository index in flat arrays', () => {
  it('gives back every entry it was given, first index wins for a blob listed twice', () => {
    const index = new RepoIndex(undefined as never, Buffer.alloc(32));
    const entries: BlobEntry[] = [];
    for (let p = 0; p < 3; p++) {
      const pack = id(randomBytes(32));
      const blobs = Array.from({ length: 5000 }, (_, n) => ({
        id: id(randomBytes(32)),
        pack,
        offset: n * 1000,
        length: 999,
        rawLength: 4321 + n,
        flags: n % 2,
        // scopes with one key set and scopes with several
        scopeHash: n % 3 === 0 ? id(randomBytes(16)) : ['aa', 'bb'][n % 2]!,
        keyId: n % 7 === 0 ? 'k1' : n % 5 === 0 ? 'k3' : 'k2',
      }));
      entries.push(...blobs);
      index.add(`index/${p}`, [{ id: pack, blobs }]);
    }
    index.add('index/again', [{ id: 'other', blobs: [{ ...entries[0]!, pack: 'other' }] }]);
    expect(index.size).toBe(entries.length);
    for (const e of entries) expect(index.get(e.id)).toEqual(e);
    expect(index.get(id(randomBytes(32)))).toBeUndefined();
    expect(index.indexesOf.get('other')).toEqual(['index/again']);
  });
});

describe('index claims (the dedup of open write sessions)', () => {
  const entry = (hex: string, pack: string): BlobEntry => ({
    id: hex,
    pack,
    offset: 0,
    length: 10,
    rawLength: 10,
    flags: 0,
    scopeHash: 's',
    keyId: 'k',
  });

  it('lets each session store a blob once, counts nothing as stored until an index holds it', () => {
    const index = new RepoIndex(undefined as never, Buffer.alloc(32));
    const blob = randomBytes(32);
    expect(index.claim(blob, 1)).toBe(true);
    expect(index.claim(blob, 1)).toBe(false); // the same session already stores it
    expect(index.claim(blob, 2)).toBe(true); // another session may not rely on session 1
    expect(index.find(blob)).toBe(-1);
    expect(index.get(id(blob))).toBeUndefined();
    expect(index.size).toBe(0);
    index.add('index/a', [{ id: 'p1', blobs: [entry(id(blob), 'p1')] }]);
    expect(index.find(blob)).toBeGreaterThanOrEqual(0);
    expect(index.get(id(blob))?.pack).toBe('p1');
    expect(index.claim(blob, 3)).toBe(false);
    // the second copy's index does not replace the first entry
    index.add('index/b', [{ id: 'p2', blobs: [entry(id(blob), 'p2')] }]);
    expect(index.get(id(blob))?.pack).toBe('p1');
    expect(index.size).toBe(1);
  });
});

/** Serves a stored list back in pieces of random sizes, cutting through lines and UTF-8 characters. */
function rechunked(store: MemoryContent, seed: number): ContentReader {
  return {
    read: (ref: ContentRef) =>
      Readable.from(
        (async function* () {
          const bytes = await store.readBuffer(ref);
          let x = seed;
          for (let at = 0; at < bytes.length;) {
            x = (x * 1103515245 + 12345) % 2 ** 31;
            const n = 1 + (x % 7);
            yield bytes.subarray(at, at + n);
            at += n;
          }
        })(),
      ),
  };
}

describe('record lists', () => {
  it('read back every record, in order, however the bytes arrive', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ tenant: fc.string({ unit: 'grapheme' }), rows: fc.nat() }), { maxLength: 60 }),
        fc.nat(),
        async (records, seed) => {
          const store = new MemoryContent();
          const list = new RecordListWriter<(typeof records)[number]>(store, 'wedding:1');
          for (const r of records) await list.push(r);
          const ref = await list.end();
          expect(ref).toMatchObject({ scope: 'wedding:1', records: true });
          expect(list.count).toBe(records.length);
          const back = [];
          for await (const r of readRecords(rechunked(store, seed), ref)) back.push(r);
          expect(back).toEqual(records);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('are written in pieces while they grow, not held whole', async () => {
    const store = new MemoryContent();
    const seen: number[] = [];
    const writer = {
      ...store,
      stats: store.stats,
      flush: () => store.flush(),
      write: async (scope: string, data: AsyncIterable<Buffer>) => {
        let size = 0;
        for await (const piece of data) {
          seen.push(piece.length);
          size += piece.length;
        }
        return { scope, blobs: [], size };
      },
    };
    const list = new RecordListWriter<{ n: number; pad: string }>(writer);
    for (let n = 0; n < 20_000; n++) await list.push({ n, pad: 'x'.repeat(40) });
    await list.end();
    expect(seen.length).toBeGreaterThan(10);
    expect(Math.max(...seen)).toBeLessThan(128 * 1024);
  });
});

describe('pack builder', () => {
  it('says a blob does not fit before the buffer would have to grow', () => {
    const pack = new PackBuilder(1024 * 1024);
    expect(pack.fits(512 * 1024)).toBe(true);
    pack.add(id(randomBytes(32)), [randomBytes(900 * 1024)], {
      rawLength: 1,
      flags: 0,
      scopeHash: 'a',
      keyId: 'b',
    });
    expect(pack.fits(50 * 1024)).toBe(true);
    expect(pack.fits(200 * 1024)).toBe(false);
  });

  it('leaves held blobs in their buffer until the pack is released, and copies the rest', () => {
    const metaKey = randomBytes(32);
    const meta = { rawLength: 1, flags: 0, scopeHash: 'a'.repeat(64), keyId: 'b'.repeat(32) };
    const reply = randomBytes(4096);
    let freed = 0;
    const held = hold(() => freed++);
    const copied = randomBytes(300);
    const pack = new PackBuilder(1024 * 1024);
    pack.add(id(randomBytes(32)), [reply.subarray(0, 1000)], meta, held);
    pack.add(id(randomBytes(32)), [reply.subarray(1000, 2500)], meta, held);
    pack.add(id(randomBytes(32)), [copied], meta);
    pack.add(id(randomBytes(32)), [reply.subarray(3000, 3100)], meta, held);
    held.release(); // the encoder's own hold: the pack still holds the buffer
    expect(freed).toBe(0);
    const { id: packId, parts, size, entries, release } = pack.finish(metaKey);
    // back-to-back blobs of one buffer are one part; the copied blob is not in the caller's buffer
    expect(parts[0]!.buffer).toBe(reply.buffer);
    expect(parts[0]!.length).toBe(2500);
    expect(parts[1]!.buffer).not.toBe(copied.buffer);
    const original = Buffer.from(copied);
    copied.fill(0); // the pack has its own copy
    const bytes = Buffer.concat(parts);
    expect(bytes.length).toBe(size);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(packId);
    const blobs = parsePackHeader(metaKey, 'p', bytes, bytes.length);
    expect(blobs.map((b) => [b.offset, b.length])).toEqual([
      [0, 1000],
      [1000, 1500],
      [2500, 300],
      [2800, 100],
    ]);
    expect(entries.groups[0]!.pack).toBe(packId);
    expect(bytes.subarray(2500, 2800).equals(original)).toBe(true);
    expect(bytes.subarray(2800, 2900).equals(reply.subarray(3000, 3100))).toBe(true);
    release();
    release(); // once only
    expect(freed).toBe(1);
  });
});
