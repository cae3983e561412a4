import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Chunker, DEFAULT_CHUNKER, gearTable, type ChunkerParams } from '../../../src/engine/repo/chunker.js';
import { pseudoRandom, randomBytes } from './helpers.js';

const P: ChunkerParams = { minSize: 2048, avgSize: 8192, maxSize: 32768 };
const gear = gearTable(Buffer.alloc(32, 1));

function chunkAll(data: Buffer, piece: number, params = P, g = gear): Buffer[] {
  const c = new Chunker(params, g);
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += piece) out.push(...c.push(data.subarray(i, i + piece)));
  const tail = c.finish();
  if (tail) out.push(tail);
  return out;
}

/**
 * The format's cut rule written as plainly as possible (docs/FORMAT.md §3): a chunk ends after the
 * first byte, from minSize on, where the gear hash has none of the mask's bits set (the stricter
 * mask before avgSize, the looser one after), or at maxSize. Existing repositories depend on it.
 */
function referenceCuts(data: Buffer, params: ChunkerParams, g: Uint32Array): number[] {
  const bits = Math.round(Math.log2(params.avgSize));
  const high = (n: number) => (0xffffffff << (32 - n)) | 0;
  const [maskS, maskL] = [high(bits + 2), high(bits - 2)];
  const sizes: number[] = [];
  let start = 0;
  while (start < data.length) {
    let h = 0;
    let size = 0;
    let end = data.length;
    for (let i = start; i < data.length; i++) {
      size = i - start + 1;
      if (size > params.minSize) h = ((h << 1) + g[data[i]!]!) | 0;
      if (size > params.minSize && (h & (size <= params.avgSize ? maskS : maskL)) === 0) {
        end = i + 1;
        break;
      }
      if (size === params.maxSize) {
        end = i + 1;
        break;
      }
    }
    sizes.push(end - start);
    start = end;
  }
  return sizes;
}

describe('chunker', () => {
  it('cuts where the plain statement of the rule cuts, for any parameters and input splits', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 6, max: 13 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 2, max: 8 }),
        fc.integer({ min: 1, max: 20_000 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.boolean(),
        (avgBits, minShift, maxMul, piece, seed, flat) => {
          const avgSize = 2 ** avgBits;
          const params = { minSize: avgSize >> minShift, avgSize, maxSize: avgSize * maxMul };
          const data = flat ? Buffer.alloc(50_000, seed % 256) : pseudoRandom(60_000 + seed, seed);
          const g = gearTable(Buffer.alloc(32, seed % 256));
          const sizes = chunkAll(data, piece, params, g).map((c) => c.length);
          expect(sizes).toEqual(referenceCuts(data, params, g));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('cuts the same boundaries however the input is split, within min/max', () => {
    const data = pseudoRandom(600_000, 2);
    const ref = chunkAll(data, data.length).map((c) => c.length);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100_000 }), (piece) => {
        expect(chunkAll(data, piece).map((c) => c.length)).toEqual(ref);
      }),
      { numRuns: 30 },
    );
    expect(Buffer.concat(chunkAll(data, 999)).equals(data)).toBe(true);
    for (const len of ref.slice(0, -1)) {
      expect(len).toBeGreaterThanOrEqual(P.minSize);
      expect(len).toBeLessThanOrEqual(P.maxSize);
    }
    const avg = data.length / ref.length;
    expect(avg).toBeGreaterThan(P.avgSize / 2);
    expect(avg).toBeLessThan(P.avgSize * 2);
  });

  it('cuts at max size on data with no cut points, and yields nothing for empty input', () => {
    expect(chunkAll(Buffer.alloc(100_000), 4096).map((c) => c.length)).toEqual([32768, 32768, 32768, 1696]);
    expect(chunkAll(Buffer.alloc(0), 10)).toEqual([]);
  });

  it('keeps most chunks after an insertion (content-defined, not offset-defined)', () => {
    const data = pseudoRandom(1_000_000, 3);
    const edited = Buffer.concat([
      data.subarray(0, 500_000),
      Buffer.from('inserted!'),
      data.subarray(500_000),
    ]);
    const key = (c: Buffer) => c.toString('base64');
    const before = new Set(chunkAll(data, 65536).map(key));
    const after = chunkAll(edited, 65536);
    const reused = after.filter((c) => before.has(key(c))).length;
    expect(reused).toBeGreaterThanOrEqual(after.length - 2);
  });

  it('boundaries depend on the per-repository gear seed', () => {
    const data = pseudoRandom(300_000, 4);
    const a = chunkAll(data, 65536).map((c) => c.length);
    const b = chunkAll(data, 65536, P, gearTable(randomBytes(32))).map((c) => c.length);
    expect(a).not.toEqual(b);
  });

  it('default parameters give ~1 MiB chunks', () => {
    const data = randomBytes(24 * 1024 * 1024);
    const sizes = chunkAll(data, 1 << 20, DEFAULT_CHUNKER).map((c) => c.length);
    const avg = data.length / sizes.length;
    expect(avg).toBeGreaterThan(700 * 1024);
    expect(avg).toBeLessThan(1600 * 1024);
  });
});
