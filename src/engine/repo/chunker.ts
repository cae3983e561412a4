/** Content-defined chunking (FastCDC with normalized chunking) over a keyed gear table, streaming. */
import { createHmac } from 'node:crypto';
import { ValidationError } from '../../errors.js';
// The chunker itself is plain JavaScript, so the encoder threads run the very same code.
import { Chunker } from './chunker-core.mjs';

export { Chunker };

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
