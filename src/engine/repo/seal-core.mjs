/**
 * Sealing rules shared by the main thread and the encoder threads (plain JavaScript, so a worker
 * thread loads it without a TypeScript loader): zstd is kept only when it saves something worth
 * its decompression on restore, and nonces come from the CSPRNG a few thousand at a time.
 */
import { Buffer } from 'node:buffer';
import { randomFillSync } from 'node:crypto';

export const FLAG_ZSTD = 1;
export const NONCE_BYTES = 12;

/** [stored body, flags]: the zstd frame of `plain` when at least 16 bytes smaller, else `plain`. */
export function squeeze(compressor, plain, compress) {
  if (compress && plain.length > 64) {
    const packed = compressor.compress(plain);
    if (packed.length + 16 < plain.length) return [packed, FLAG_ZSTD];
  }
  return [plain, 0];
}

// A call to the CSPRNG per message costs more than sealing a small one (a blob, an inline segment).
let nonces = Buffer.alloc(0);
let nonceAt = 0;

/** A fresh random nonce (a view of a slab refilled every 4,096 nonces). */
export function nextNonce() {
  if (nonceAt + NONCE_BYTES > nonces.length) {
    nonces = randomFillSync(Buffer.allocUnsafe(NONCE_BYTES * 4096));
    nonceAt = 0;
  }
  nonceAt += NONCE_BYTES;
  return nonces.subarray(nonceAt - NONCE_BYTES, nonceAt);
}
