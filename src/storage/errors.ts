/** Maps whatever an SDK or socket throws to wedvault's typed errors, once for every provider. */
import { PassThrough, type Readable } from 'node:stream';
import {
  CorruptionError,
  FatalError,
  NotFoundError,
  StorageAuthError,
  TransientError,
  WedvaultError,
} from '../errors.js';

const NOT_FOUND_CODES = new Set(['NoSuchKey', 'NotFound', 'BlobNotFound', 'ENOENT']);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'REQUEST_SEND_ERROR',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'InternalError',
  'ServiceUnavailable',
  'ServerBusy',
  'OperationTimedOut',
  'AbortError',
]);
/** The store computed a different digest than we sent: the bytes changed on the way. */
const DIGEST_CODES = new Set([
  'BadDigest',
  'InvalidDigest',
  'Md5Mismatch',
  'InvalidMd5',
  'Crc64Mismatch',
  'FILE_NO_UPLOAD',
  'CONTENT_DOWNLOAD_MISMATCH',
]);
/** Azurite says "Provided contentMD5 doesn't match." with a generic code. */
const DIGEST_MESSAGES =
  /md5.{0,40}(mismatch|n['’]?t match|did not match)|checksum.{0,40}(mismatch|did not match)/i;
const NETWORK_MESSAGES = /socket hang up|aborted|timed? ?out|network timeout|ECONNRESET|ECONNREFUSED|EPIPE/i;

interface ErrorShape {
  name?: unknown;
  code?: unknown;
  Code?: unknown;
  statusCode?: unknown;
  status?: unknown;
  type?: unknown;
  message?: unknown;
  cause?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  $response?: { statusCode?: unknown };
}

/** Every name, code and status an error or its causes carry. */
function facts(err: unknown): { codes: Set<string>; status?: number; messages: string[] } {
  const codes = new Set<string>();
  const messages: string[] = [];
  let status: number | undefined;
  let e: unknown = err;
  for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const x = e as ErrorShape;
    for (const c of [x.name, x.code, x.Code, x.type]) if (typeof c === 'string') codes.add(c);
    for (const s of [x.$metadata?.httpStatusCode, x.statusCode, x.status, x.$response?.statusCode, x.code]) {
      if (status === undefined && typeof s === 'number' && s >= 100 && s < 600) status = s;
    }
    if (typeof x.message === 'string') messages.push(x.message);
    e = x.cause;
  }
  return { codes, status, messages };
}

export interface MapContext {
  target: string;
  op: string;
  key?: string;
}

/** Turns an SDK, socket or HTTP error into NotFound, StorageAuth, Transient, Corruption or Fatal. */
export function mapStorageError(err: unknown, ctx: MapContext): WedvaultError {
  if (err instanceof WedvaultError) return err;
  const { codes, status, messages } = facts(err);
  const has = (set: Set<string>) => [...codes].some((c) => set.has(c));
  const first = (messages[0] ?? String(err)).split('\n')[0]!.slice(0, 300);
  const what = `${ctx.target}: ${ctx.op}${ctx.key ? ` ${ctx.key}` : ''}`;
  const opts = { cause: err, details: { target: ctx.target, op: ctx.op, key: ctx.key, status } };

  // A missing bucket or container is a configuration problem, not a missing object.
  if (
    codes.has('NoSuchBucket') ||
    codes.has('ContainerNotFound') ||
    messages.some((m) => /bucket does not exist/i.test(m))
  ) {
    return new FatalError(`${what}: bucket or container does not exist`, opts);
  }
  if (has(DIGEST_CODES) || (status === 400 && messages.some((m) => DIGEST_MESSAGES.test(m)))) {
    return new CorruptionError(`${what}: checksum mismatch (${first})`, { ...opts, object: ctx.key });
  }
  if (status === 404 || has(NOT_FOUND_CODES)) return new NotFoundError(`${what}: not found`, opts);
  if (status === 401 || status === 403)
    return new StorageAuthError(`${what}: access refused (${status})`, opts);
  if (status !== undefined && (status >= 500 || status === 429 || status === 408)) {
    return new TransientError(`${what}: store answered ${status} (${first})`, opts);
  }
  if (has(NETWORK_CODES) || (status === undefined && messages.some((m) => NETWORK_MESSAGES.test(m)))) {
    return new TransientError(`${what}: ${first}`, opts);
  }
  return new FatalError(`${what}: ${first}`, opts);
}

/**
 * Returns a stream that carries src's bytes and whose errors are mapped, so a reader sees a
 * TransientError (not a raw socket error) when a download breaks half-way.
 */
export function mapStreamErrors(src: Readable, ctx: MapContext): Readable {
  const out = new PassThrough();
  src.on('error', (err) => out.destroy(mapStorageError(err, ctx)));
  out.on('close', () => {
    if (!src.destroyed) src.destroy();
  });
  src.pipe(out);
  return out;
}
