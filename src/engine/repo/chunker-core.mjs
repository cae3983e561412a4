/**
 * Content-defined chunking (FastCDC, normalized level 2) over a keyed gear table: the part shared by
 * src/engine/repo/chunker.ts and the encoder threads (encode-worker.mjs). Plain JavaScript so a
 * worker thread loads it without a TypeScript loader; the parameters are validated by chunker.ts.
 */
import { Buffer } from 'node:buffer';

/** A mask of `bits` one-bits in the high end: with a shift-left gear hash those see the last 32 bytes. */
function highMask(bits) {
  return bits <= 0 ? 0 : (0xffffffff << (32 - Math.min(bits, 32))) | 0;
}

/**
 * Splits one byte stream into chunks. push() returns the chunks completed by that input; finish()
 * returns the tail. Holds at most maxSize bytes of pending input plus the buffer being scanned.
 * Boundaries depend only on the bytes, never on how the input was split into buffers.
 */
export class Chunker {
  parts = [];
  pending = 0;
  hash = 0;

  /** @param {{minSize: number, avgSize: number, maxSize: number}} params @param {Uint32Array} gear */
  constructor(params, gear) {
    this.params = params;
    this.gear = gear;
    const bits = Math.round(Math.log2(params.avgSize));
    // Normalized chunking, level 2: harder to cut before avg, easier after, so sizes cluster near avg.
    this.maskS = highMask(bits + 2);
    this.maskL = highMask(bits - 2);
  }

  /** @param {Buffer} buf @returns {Buffer[]} */
  push(buf) {
    const out = [];
    let start = 0;
    while (start < buf.length) {
      const cut = this.scan(buf, start);
      if (cut < 0) {
        this.parts.push(buf.subarray(start));
        this.pending += buf.length - start;
        break;
      }
      this.parts.push(buf.subarray(start, cut));
      out.push(this.take());
      start = cut;
    }
    return out;
  }

  /** @returns {Buffer | undefined} */
  finish() {
    return this.pending > 0 ? this.take() : undefined;
  }

  take() {
    const chunk = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
    this.parts = [];
    this.pending = 0;
    this.hash = 0;
    return chunk;
  }

  /** Returns the index in buf where the current chunk ends, or -1 if it does not end in buf. */
  scan(buf, start) {
    const { minSize, avgSize, maxSize } = this.params;
    const len = buf.length;
    // `size` is the chunk length if it ended right before buf[i].
    let i = start;
    const base = this.pending - start;
    // Cut-point skipping: bytes before minSize are never hashed.
    if (base + i < minSize) {
      i = Math.min(len, minSize - base);
      if (base + i < minSize) return -1;
    }
    const midEnd = Math.min(len, avgSize - base);
    if (i < midEnd) {
      const cut = this.roll(buf, i, midEnd, this.maskS);
      if (cut >= 0) return cut;
      i = midEnd;
    }
    const end = Math.min(len, maxSize - base);
    if (i < end) {
      const cut = this.roll(buf, i, end, this.maskL);
      if (cut >= 0) return cut;
      i = end;
    }
    if (base + i >= maxSize) {
      this.hash = 0;
      return i;
    }
    return -1;
  }

  /**
   * Rolls the hash over buf[i, end): the index just past the first byte where it has none of
   * `mask`'s bits set (the hash starts over), or -1 with the hash kept for the next bytes.
   */
  roll(buf, i, end, mask) {
    const gear = this.gear;
    let h = this.hash;
    // Eight bytes per iteration, each still tested: the loop's own bookkeeping halved the speed.
    for (const last = end - 7; i < last; i += 8) {
      if (((h = ((h << 1) + gear[buf[i]]) | 0) & mask) === 0) return this.cut(i + 1);
      if (((h = ((h << 1) + gear[buf[i + 1]]) | 0) & mask) === 0) return this.cut(i + 2);
      if (((h = ((h << 1) + gear[buf[i + 2]]) | 0) & mask) === 0) return this.cut(i + 3);
      if (((h = ((h << 1) + gear[buf[i + 3]]) | 0) & mask) === 0) return this.cut(i + 4);
      if (((h = ((h << 1) + gear[buf[i + 4]]) | 0) & mask) === 0) return this.cut(i + 5);
      if (((h = ((h << 1) + gear[buf[i + 5]]) | 0) & mask) === 0) return this.cut(i + 6);
      if (((h = ((h << 1) + gear[buf[i + 6]]) | 0) & mask) === 0) return this.cut(i + 7);
      if (((h = ((h << 1) + gear[buf[i + 7]]) | 0) & mask) === 0) return this.cut(i + 8);
    }
    for (; i < end; i++) {
      if (((h = ((h << 1) + gear[buf[i]]) | 0) & mask) === 0) return this.cut(i + 1);
    }
    this.hash = h;
    return -1;
  }

  /** A chunk ends before buf[at]: the next one starts with a fresh hash. */
  cut(at) {
    this.hash = 0;
    return at;
  }
}
