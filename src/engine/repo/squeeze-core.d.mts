/** Types of squeeze-core.mjs. */
export declare const FLAG_ZSTD: 1;
/** [stored body, flags]: the zstd frame of `plain` when at least 16 bytes smaller, else `plain`. */
export declare function squeeze(
  compressor: { compress(data: Uint8Array): Buffer },
  plain: Buffer,
  compress: boolean,
): [Buffer, number];
