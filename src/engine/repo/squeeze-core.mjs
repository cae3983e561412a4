/**
 * The compression rule of blobs and inline content, shared by the main thread and the encoder
 * threads: zstd is kept only when it saves something worth its decompression on restore.
 */
export const FLAG_ZSTD = 1;

/** [stored body, flags]: the zstd frame of `plain` when at least 16 bytes smaller, else `plain`. */
export function squeeze(compressor, plain, compress) {
  if (compress && plain.length > 64) {
    const packed = compressor.compress(plain);
    if (packed.length + 16 < plain.length) return [packed, FLAG_ZSTD];
  }
  return [plain, 0];
}
