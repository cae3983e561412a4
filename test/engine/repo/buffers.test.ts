import { describe, expect, it } from 'vitest';
import { FatalError } from '../../../src/errors.js';
import { BufferPool, hold } from '../../../src/engine/repo/buffers.js';

describe('buffer pool', () => {
  it('hands a given-back buffer out again, and keeps no views, no giants, no more than it may', () => {
    const pool = new BufferPool(2, 1024);
    const a = pool.take(100);
    expect(a.length).toBe(100);
    expect(a.byteOffset).toBe(0);
    pool.give(a.buffer as ArrayBuffer);
    expect(pool.take(50).buffer).toBe(a.buffer); // big enough: the same memory again
    pool.give(a);
    expect(pool.take(200).buffer).not.toBe(a.buffer); // too small for this request

    const whole = Buffer.allocUnsafeSlow(64);
    pool.give(whole.subarray(8)); // a view: someone may still hold the rest
    pool.give(Buffer.allocUnsafeSlow(4096)); // over the size kept
    const kept = [Buffer.allocUnsafeSlow(10), Buffer.allocUnsafeSlow(10), Buffer.allocUnsafeSlow(10)];
    for (const b of kept) pool.give(b);
    const out = [pool.take(10), pool.take(10), pool.take(10)];
    const pooled = [a, ...kept].map((b) => b.buffer);
    expect(out.filter((b) => pooled.includes(b.buffer))).toHaveLength(2);
  });

  it('when full, keeps a bigger buffer given back in place of its smallest', () => {
    const pool = new BufferPool(2, 1 << 20);
    const small = [pool.take(100), pool.take(100)];
    for (const b of small) pool.give(b);
    const big = pool.take(1000); // no kept buffer fits: a new one
    expect(small.map((b) => b.buffer)).not.toContain(big.buffer);
    pool.give(big);
    expect(pool.kept).toBe(2);
    expect(pool.take(1000).buffer).toBe(big.buffer); // the next big request reuses it
    pool.give(big);
    pool.give(pool.take(100)); // a small one given back does not push the big one out
    expect(pool.take(1000).buffer).toBe(big.buffer);
  });

  it('frees a held buffer once, when the last holder releases it', () => {
    let freed = 0;
    const h = hold(() => freed++);
    h.retain();
    h.retain();
    h.release();
    h.release();
    expect(freed).toBe(0);
    h.release(); // the maker's own
    expect(freed).toBe(1);
    expect(() => h.release()).toThrow(FatalError);
    expect(() => h.retain()).toThrow(FatalError);
    expect(freed).toBe(1);
  });

  it('keeps within its byte budget, letting the smallest buffers go first', () => {
    const pool = new BufferPool(8, 1 << 20, false, 1000);
    const [a, b, c] = [pool.take(400), pool.take(300), pool.take(500)];
    pool.give(a);
    pool.give(b);
    expect(pool.kept).toBe(2); // 700 bytes
    pool.give(c); // 1200 bytes: the 300-byte one goes
    expect(pool.kept).toBe(2);
    expect(pool.take(250).buffer).toBe(a.buffer);
    expect(pool.take(250).buffer).toBe(c.buffer);
    expect(pool.kept).toBe(0);
  });
});
