/**
 * Inline content: a few hundred bytes of one key scope (a delta's changed rows of one wedding)
 * sealed into the content reference itself instead of a blob. A blob costs its pack-header and
 * index entries (~83 bytes each) and its id in the reference, twice or more what such content
 * holds; inline it costs its sealed bytes in base64. docs/FORMAT.md §6.
 */
import zstd from 'zstd-napi';
import { CorruptionError, errorMessage, NotFoundError } from '../../errors.js';
import type { ContentReader, ContentRef } from '../api.js';
import { openBody } from './blob.js';
import { seal, SEAL_OVERHEAD } from './crypto.js';
import type { KeySet } from './keys.js';
import { FLAG_ZSTD, squeeze } from './seal-core.mjs';

/** Content up to this size may be inline, when its writer asks (WriteHint.inline). */
export const INLINE_LIMIT = 2048;

const compressor = new zstd.Compressor();
compressor.setParameters({ compressionLevel: 3 });

function aad(keys: Pick<KeySet, 'scopeHash' | 'keyId'>, flags: number): Buffer {
  return Buffer.concat([
    Buffer.from('wedvault-inline-v1'),
    Buffer.from(keys.scopeHash, 'hex'),
    Buffer.from(keys.keyId, 'hex'),
    Buffer.from([flags]),
  ]);
}

/** base64 of u8 keyId length ‖ keyId ‖ flags ‖ sealed body (zstd when it saves 16 bytes, as blobs). */
export function sealInline(keys: KeySet, plain: Buffer, compress: boolean): string {
  const [body, flags] = squeeze(compressor, plain, compress);
  const keyId = Buffer.from(keys.keyId, 'hex');
  const sealed = seal(keys.encKey, body, aad(keys, flags));
  return Buffer.concat([Buffer.from([keyId.length]), keyId, Buffer.from([flags]), sealed]).toString('base64');
}

/**
 * The plaintext of an inline reference, opened with the key set `keysOf` gives for the key id it
 * names; every failure to open is a CorruptionError naming the scope, since the bytes live inside
 * a record list.
 */
export async function openInline(
  ref: ContentRef,
  keysOf: (keyId: string) => Promise<KeySet>,
): Promise<Buffer> {
  const fail = (why: string) => new CorruptionError(`inline content of ${ref.scope} ${why}`);
  const bytes = Buffer.from(ref.inline!, 'base64');
  const at = 2 + (bytes[0] ?? 0);
  const keys = await keysOf(bytes.toString('hex', 1, at - 1));
  if (bytes.length < at + SEAL_OVERHEAD) throw fail('is too short');
  const flags = bytes[at - 1]!;
  if ((flags & ~FLAG_ZSTD) !== 0) throw fail(`has unknown flags ${flags}`);
  const plain = openBody(keys.encKey, bytes.subarray(at), aad(keys, flags), flags);
  if (typeof plain === 'string') throw fail(plain);
  if (plain.length !== ref.size) throw fail(`holds ${plain.length} bytes, its reference says ${ref.size}`);
  return plain;
}

/**
 * What is wrong with inline content, read through `reader`: undefined when it opens, or when its
 * scope was erased (unreadable by design, not a fault).
 */
export async function inlineFault(
  reader: Required<Pick<ContentReader, 'readBuffer'>>,
  ref: ContentRef,
): Promise<string | undefined> {
  try {
    await reader.readBuffer(ref);
    return undefined;
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    return errorMessage(err);
  }
}
