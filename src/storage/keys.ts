/** Helpers every cloud provider shares: the target prefix around keys, and MD5 checks of bodies. */
import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { CorruptionError, ValidationError } from '../errors.js';
import { assertSafeKey } from './local.js';

/** '' or 'a/b/': a prefix is a folder, so 'backups' never matches 'backups-old/…'. */
export function normalizePrefix(prefix: string | undefined): string {
  const p = (prefix ?? '').replace(/^\/+|\/+$/g, '');
  if (p === '') return '';
  assertSafeKey(p);
  return `${p}/`;
}

/** Maps keys relative to a target to the store's full names and back. */
export class KeySpace {
  readonly prefix: string;
  constructor(prefix: string | undefined) {
    this.prefix = normalizePrefix(prefix);
  }

  full(key: string): string {
    assertSafeKey(key);
    return this.prefix + key;
  }

  /** A list prefix may be '' or end in '/', unlike a key. */
  listPrefix(prefix: string): string {
    if (prefix.includes('\0') || prefix.startsWith('/') || prefix.split('/').includes('..')) {
      throw new ValidationError(`invalid list prefix "${prefix}"`);
    }
    return this.prefix + prefix;
  }

  relative(fullKey: string): string {
    return fullKey.slice(this.prefix.length);
  }
}

/** ETags arrive quoted from S3 and Azure, bare from GCS; callers compare them bare. */
export function unquote(etag: string | undefined): string | undefined {
  return etag?.replace(/^"(.*)"$/, '$1');
}

export function md5(buf: Buffer): Buffer {
  return createHash('md5').update(buf).digest();
}

/** For a Buffer with a caller-given MD5: refuse before sending bytes that do not match it. */
export function checkedBufferMd5(body: Buffer, expected: Buffer | undefined, key: string): Buffer {
  const actual = md5(body);
  if (expected && !actual.equals(expected)) {
    throw new CorruptionError(`MD5 mismatch writing ${key}`, { object: key });
  }
  return actual;
}

/**
 * Passes a stream through while hashing it. When the caller gave an MD5 and the bytes differ, the
 * stream fails before it ends, so the upload is never completed and no reader sees the object.
 */
export function md5Verifier(
  source: Readable,
  expected: Buffer | undefined,
  key: string,
): { stream: Readable; result: () => { md5: Buffer; size: number } } {
  const hash = createHash('md5');
  let size = 0;
  let digest: Buffer | undefined;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      digest = hash.digest();
      if (expected && !digest.equals(expected)) {
        cb(new CorruptionError(`MD5 mismatch writing ${key}`, { object: key }));
      } else cb();
    },
  });
  source.on('error', (err) => t.destroy(err));
  source.pipe(t);
  return {
    stream: t,
    result: () => {
      if (!digest) throw new Error('md5Verifier: stream has not ended');
      return { md5: digest, size };
    },
  };
}

/** A Buffer as 1 MiB chunks, so backpressure (and the idle watchdog) sees progress while it uploads. */
export function toReadable(body: Buffer | Readable): Readable {
  if (!Buffer.isBuffer(body)) return body;
  const step = 1024 * 1024;
  return Readable.from(
    (function* () {
      for (let i = 0; i < body.length; i += step) yield body.subarray(i, i + step);
      if (body.length === 0) yield body;
    })(),
  );
}

/**
 * Counts bytes flowing through; when none pass for idleMs, calls onIdle. SDKs whose timeouts are
 * totals (too short for a large upload, too long for a dead server) get an idle timeout this way.
 */
export function idleWatchdog(
  source: Readable,
  idleMs: number,
  onIdle: () => void,
): { stream: Readable; stop: () => void } {
  let last = Date.now();
  const timer = setInterval(
    () => {
      if (Date.now() - last > idleMs) {
        clearInterval(timer);
        onIdle();
      }
    },
    Math.max(50, Math.floor(idleMs / 4)),
  );
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      last = Date.now();
      cb(null, chunk);
    },
  });
  source.on('error', (err) => t.destroy(err));
  source.pipe(t);
  return { stream: t, stop: () => clearInterval(timer) };
}

/** Options with `undefined` values dropped, so spreading them over defaults keeps the defaults. */
export function definedOnly<T extends object>(opts: T): Partial<T> {
  return Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as Partial<T>;
}
