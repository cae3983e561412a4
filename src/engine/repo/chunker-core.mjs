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
    const gear = this.gear;
    const len = buf.length;
    // `size` is the chunk length if it ended right before buf[i].
    let i = start;
    const base = this.pending - start;
    // Cut-point skipping: bytes before minSize are never hashed.
    if (base + i < minSize) {
      i = Math.min(len, minSize - base);
      if (base + i < minSize) return -1;
    }
    let h = this.hash;
    const midEnd = Math.min(len, avgSize - base);
    const maskS = this.maskS;
    for (; i < midEnd; i++) {
      h = ((h << 1) + gear[buf[i]]) | 0;
      if ((h & maskS) === 0) {
        this.hash = 0;
        return i + 1;
      }
    }
    const end = Math.min(len, maxSize - base);
    const maskL = this.maskL;
    for (; i < end; i++) {
      h = ((h << 1) + gear[buf[i]]) | 0;
      if ((h & maskL) === 0) {
        this.hash = 0;
        return i + 1;
      }
    }
    if (base + i >= maxSize) {
      this.hash = 0;
      return i;
    }
    this.hash = h;
    return -1;
  }
}
