/**
 * The fixed-size records the main thread writes for the encoder threads (encode-pool.ts writes
 * them, encode-worker.mjs reads them): one layout, named offsets, for both sides. Plain JavaScript
 * so a worker thread loads it without a TypeScript loader. Integers are little-endian u32.
 */

/** 'wedvault-blob-v1' ‖ id (32) ‖ scopeHash (16) ‖ keyId (8). */
export const AAD_PREFIX_BYTES = 72;
export const KEY_BYTES = 32;
export const ID_BYTES = 32;

/** A blob to seal: u32 length ‖ u8 compress ‖ AES key ‖ AAD prefix. */
export const SEAL = Object.freeze({
  LENGTH: 0,
  COMPRESS: 4,
  KEY: 5,
  AAD: 5 + KEY_BYTES,
  BYTES: 5 + KEY_BYTES + AAD_PREFIX_BYTES,
});

/** A blob to open: u32 sealed length ‖ u32 raw length ‖ u8 flags ‖ AES key ‖ id key ‖ AAD prefix ‖ id. */
export const OPEN = Object.freeze({
  SEALED_LENGTH: 0,
  RAW_LENGTH: 4,
  FLAGS: 8,
  KEY: 9,
  ID_KEY: 9 + KEY_BYTES,
  AAD: 9 + 2 * KEY_BYTES,
  ID: 9 + 2 * KEY_BYTES + AAD_PREFIX_BYTES,
  BYTES: 9 + 2 * KEY_BYTES + AAD_PREFIX_BYTES + ID_BYTES,
});

/** A blob of a file to restore: an OPEN record ‖ u32 pack (an index into the task's packs) ‖ u32 offset in it. */
export const RESTORE = Object.freeze({
  PACK: OPEN.BYTES,
  OFFSET: OPEN.BYTES + 4,
  BYTES: OPEN.BYTES + 8,
});
