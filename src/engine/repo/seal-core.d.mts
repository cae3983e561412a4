/** Types of seal-core.mjs. */
export declare const FLAG_ZSTD: 1;
export declare const NONCE_BYTES: 12;
/** [stored body, flags]: the zstd frame of `plain` when at least 16 bytes smaller, else `plain`. */
export declare function squeeze(
  compressor: { compress(data: Uint8Array): Buffer },
  plain: Buffer,
  compress: boolean,
): [Buffer, number];
/** A fresh random nonce (a view of a slab refilled every 4,096 nonces). */
export declare function nextNonce(): Buffer;
