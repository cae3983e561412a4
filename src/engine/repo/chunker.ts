/** Content-defined chunking (FastCDC with normalized chunking) over a keyed gear table, streaming. */
import { createHmac } from 'node:crypto';
import { ValidationError } from '../../errors.js';

export interface ChunkerParams {
  minSize: number;
  avgSize: number;
  maxSize: number;
}

export const DEFAULT_CHUNKER: ChunkerParams = {
  minSize: 512 * 1024,
  avgSize: 1024 * 1024,
  maxSize: 8 * 1024 * 1024,
};

export function validateChunkerParams(p: ChunkerParams): void {
  const pow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
  if (!pow2(p.avgSize) || p.avgSize < 64 || p.avgSize > 2 ** 28) {
    throw new ValidationError(`chunker avgSize must be a power of two in [64, 2^28], got ${p.avgSize}`);
  }
  if (!(p.minSize >= 1 && p.minSize < p.avgSize && p.avgSize < p.maxSize && p.maxSize <= 2 ** 30)) {
    throw new ValidationError(`chunker sizes must satisfy 1 <= min < avg < max, got ${JSON.stringify(p)}`);
  }
}

/**
 * 256 random 32-bit words from HMAC-SHA256(seed, counter). The seed is secret per repository, so
 * chunk boundaries (and hence chunk sizes) reveal nothing about content to someone without the key.
 */
export function gearTable(seed: Buffer): Uint32Array {
  const table = new Uint32Array(256);
  for (let block = 0; block < 32; block++) {
    const d = createHmac('sha256', seed).update(`gear-${block}`).digest();
    for (let j = 0; j < 8; j++) table[block * 8 + j] = d.readUInt32LE(j * 4);
  }
  return table;
}

/** A mask of `bits` one-bits in the high end: with a shift-left gear hash those see the last 32 bytes. */
function highMask(bits: number): number {
  return bits <= 0 ? 0 : (0xffffffff << (32 - Math.min(bits, 32))) | 0;
}

/**
 * Splits one byte stream into chunks. push() returns the chunks completed by that input; finish()
 * returns the tail. Holds at most maxSize bytes of pending input plus the buffer being scanned.
 * Boundaries depend only on the bytes, never on how the input was split into buffers.
 */
export class Chunker {
  private readonly gear: Uint32Array;
  private readonly maskS: number;
  private readonly maskL: number;
  private parts: Buffer[] = [];
  private pending = 0;
  private hash = 0;

  constructor(
    private readonly params: ChunkerParams,
    gear: Uint32Array,
  ) {
    validateChunkerParams(params);
    this.gear = gear;
    const bits = Math.round(Math.log2(params.avgSize));
    // Normalized chunking, level 2: harder to cut before avg, easier after, so sizes cluster near avg.
    this.maskS = highMask(bits + 2);
    this.maskL = highMask(bits - 2);
  }

  push(buf: Buffer): Buffer[] {
    const out: Buffer[] = [];
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

  finish(): Buffer | undefined {
    return this.pending > 0 ? this.take() : undefined;
  }

  private take(): Buffer {
    const chunk = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    this.parts = [];
    this.pending = 0;
    this.hash = 0;
    return chunk;
  }

  /** Returns the index in buf where the current chunk ends, or -1 if it does not end in buf. */
  private scan(buf: Buffer, start: number): number {
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
      h = ((h << 1) + gear[buf[i]!]!) | 0;
      if ((h & maskS) === 0) {
        this.hash = 0;
        return i + 1;
      }
    }
    const end = Math.min(len, maxSize - base);
    const maskL = this.maskL;
    for (; i < end; i++) {
      h = ((h << 1) + gear[buf[i]!]!) | 0;
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

/** Chunks an async stream of buffers; each chunk is yielded as soon as its boundary is found. */
export async function* chunkStream(
  source: AsyncIterable<Buffer | Uint8Array | string>,
  params: ChunkerParams,
  gear: Uint32Array,
): AsyncGenerator<Buffer> {
  const chunker = new Chunker(params, gear);
  for await (const piece of source) {
    const buf = Buffer.isBuffer(piece) ? piece : Buffer.from(piece as Uint8Array);
    yield* chunker.push(buf);
  }
  const tail = chunker.finish();
  if (tail) yield tail;
}
