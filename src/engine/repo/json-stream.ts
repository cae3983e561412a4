/** JSON text of a large value in pieces, so a tree of hundreds of thousands of segments is never one string. */

/** Containers this deep or deeper are stringified whole: small leaves, big fan-out above them. */
const SPLIT_DEPTH = 6;

function* pieces(value: unknown, depth: number): Generator<string> {
  if (
    depth >= SPLIT_DEPTH ||
    value === null ||
    typeof value !== 'object' ||
    typeof (value as { toJSON?: unknown }).toJSON === 'function'
  ) {
    yield JSON.stringify(value) ?? 'null';
    return;
  }
  if (Array.isArray(value)) {
    yield '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) yield ',';
      const v: unknown = value[i];
      // as JSON.stringify: undefined and functions in arrays become null
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') yield 'null';
      else yield* pieces(v, depth + 1);
    }
    yield ']';
    return;
  }
  yield '{';
  let first = true;
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    yield `${first ? '' : ','}${JSON.stringify(k)}:`;
    first = false;
    yield* pieces(v, depth + 1);
  }
  yield '}';
}

/** The same text as JSON.stringify(value), as Buffers of about `size` bytes. */
export function* jsonStream(value: unknown, size = 256 * 1024): Generator<Buffer> {
  let parts: string[] = [];
  let length = 0;
  for (const p of pieces(value, 0)) {
    parts.push(p);
    length += p.length;
    if (length >= size) {
      yield Buffer.from(parts.join(''));
      parts = [];
      length = 0;
    }
  }
  if (parts.length > 0) yield Buffer.from(parts.join(''));
}

/** The JSON text when it is at most `limit` bytes, else undefined (without building the whole text). */
export function jsonPieces(value: unknown, limit: number): Buffer | undefined {
  const out: Buffer[] = [];
  let length = 0;
  for (const b of jsonStream(value, 64 * 1024)) {
    length += b.length;
    if (length > limit) return undefined;
    out.push(b);
  }
  return Buffer.concat(out);
}
