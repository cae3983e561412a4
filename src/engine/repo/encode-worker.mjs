/**
 * Encoder thread for src/engine/repo/encode-pool.ts: zstd (kept only when it shrinks the blob) then
 * AES-256-GCM, for a batch of blobs at a time. Plain JavaScript so it loads the same under tsx,
 * vitest and a build. The sealed format is crypto.seal()'s: nonce ‖ ciphertext ‖ tag, and the AAD is
 * the caller's prefix followed by the flags byte.
 */
import { Buffer } from 'node:buffer';
import { createCipheriv, randomFillSync } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import zstd from 'zstd-napi';

const NONCE = 12;
const FLAG_ZSTD = 1;
const compressor = new zstd.Compressor();
compressor.setParameters({ compressionLevel: 3 });

// Nonces are drawn from the CSPRNG a few thousand at a time: one call per blob costs more than the blob.
let nonces = Buffer.alloc(0);
let nonceAt = 0;
function nextNonce() {
  if (nonceAt + NONCE > nonces.length) {
    nonces = randomFillSync(Buffer.allocUnsafe(NONCE * 4096));
    nonceAt = 0;
  }
  const n = nonces.subarray(nonceAt, nonceAt + NONCE);
  nonceAt += NONCE;
  return n;
}

// Per blob in `meta`: u32 length ‖ u8 compress ‖ AES key (32) ‖ AAD prefix (72): see encode-pool.ts.
const META = 4 + 1 + 32 + 72;

parentPort.on('message', ({ seq, data, meta, count }) => {
  try {
    const input = Buffer.from(data);
    const records = Buffer.from(meta);
    const parts = [];
    const lengths = new Uint32Array(count);
    const flags = new Uint8Array(count);
    let offset = 0;
    let total = 0;
    for (let i = 0; i < count; i++) {
      const at = i * META;
      const length = records.readUInt32LE(at);
      const key = records.subarray(at + 5, at + 37);
      const aad = records.subarray(at + 37, at + META);
      const plain = input.subarray(offset, offset + length);
      offset += length;
      let body = plain;
      let f = 0;
      if (records[at + 4] === 1 && plain.length > 64) {
        const packed = compressor.compress(plain);
        // keep zstd only when it saves something worth the decompression on restore
        if (packed.length + 16 < plain.length) {
          body = packed;
          f |= FLAG_ZSTD;
        }
      }
      const nonce = nextNonce();
      const cipher = createCipheriv('aes-256-gcm', key, nonce);
      cipher.setAAD(Buffer.concat([aad, Buffer.from([f])]));
      const head = cipher.update(body);
      const tail = cipher.final();
      parts.push(nonce, head, tail, cipher.getAuthTag());
      lengths[i] = NONCE + head.length + tail.length + 16;
      flags[i] = f;
      total += lengths[i];
    }
    const out = Buffer.allocUnsafeSlow(total);
    let at = 0;
    for (const p of parts) at += p.copy(out, at);
    parentPort.postMessage({ seq, data: out.buffer, lengths, flags }, [
      out.buffer,
      lengths.buffer,
      flags.buffer,
    ]);
  } catch (err) {
    parentPort.postMessage({ seq, error: String(err?.stack ?? err) });
  }
});
