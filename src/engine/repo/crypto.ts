/** Small crypto primitives shared by the repository: AES-256-GCM sealing, HMAC, sub-key derivation. */
import { createCipheriv, createDecipheriv, createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { NONCE_BYTES, nextNonce } from './seal-core.mjs';

export const TAG_BYTES = 16;
/** Bytes a sealed message adds to its plaintext. */
export const SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;

/** nonce ‖ ciphertext ‖ tag; the AAD binds the message to where it belongs. */
export function seal(key: Buffer, plaintext: Buffer, aad: Buffer | string): Buffer {
  const nonce = nextNonce();
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(typeof aad === 'string' ? Buffer.from(aad) : aad);
  const body = c.update(plaintext);
  const final = c.final();
  return Buffer.concat([nonce, body, final, c.getAuthTag()]);
}

/** Returns the plaintext, or undefined when the tag does not verify (wrong key, changed bytes or AAD). */
export function open(key: Buffer, sealed: Buffer, aad: Buffer | string): Buffer | undefined {
  if (sealed.length < SEAL_OVERHEAD) return undefined;
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const d = createDecipheriv('aes-256-gcm', key, nonce);
  d.setAAD(typeof aad === 'string' ? Buffer.from(aad) : aad);
  d.setAuthTag(tag);
  try {
    const body = d.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES));
    return Buffer.concat([body, d.final()]);
  } catch {
    return undefined;
  }
}

export function hmac(key: Buffer, ...parts: (Buffer | string)[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Independent 32-byte keys for each purpose, so one key never serves two roles. */
export function deriveKey(root: Buffer, label: string): Buffer {
  return hmac(root, `wedvault/v1/${label}`);
}

/** Constant-time equality for MACs and ids. */
export function equalBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
