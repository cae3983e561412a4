// The error mapping every provider shares, fed the shapes the S3, GCS and Azure SDKs and Node sockets really throw.
import { describe, expect, it } from 'vitest';
import {
  CorruptionError,
  FatalError,
  NotFoundError,
  StorageAuthError,
  TransientError,
} from '../../src/errors.js';
import { mapStorageError } from '../../src/storage/errors.js';
import { mapFsError } from '../../src/storage/local.js';

const ctx = { target: 't', op: 'get', key: 'k' };
const err = (message: string, extra: Record<string, unknown>) => Object.assign(new Error(message), extra);

describe('mapStorageError', () => {
  it.each([
    [
      'S3 NoSuchKey',
      err('no such key', { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }),
      NotFoundError,
    ],
    [
      'S3 HEAD 404',
      err('UnknownError', { name: 'NotFound', $metadata: { httpStatusCode: 404 } }),
      NotFoundError,
    ],
    [
      'Azure BlobNotFound',
      err('blob', { name: 'RestError', code: 'BlobNotFound', statusCode: 404 }),
      NotFoundError,
    ],
    ['GCS 404', err('No such object', { code: 404 }), NotFoundError],
    ['S3 403', err('denied', { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }), StorageAuthError],
    [
      'Azure 403',
      err('auth', { name: 'RestError', code: 'AuthorizationFailure', statusCode: 403 }),
      StorageAuthError,
    ],
    ['GCS 401', err('login', { code: 401 }), StorageAuthError],
    [
      'S3 503 SlowDown',
      err('slow', { name: 'SlowDown', $metadata: { httpStatusCode: 503 } }),
      TransientError,
    ],
    ['GCS 429', err('rate', { code: 429 }), TransientError],
    ['Azure 500', err('oops', { name: 'RestError', statusCode: 500 }), TransientError],
    ['ECONNREFUSED', err('connect ECONNREFUSED 127.0.0.1:1', { code: 'ECONNREFUSED' }), TransientError],
    [
      'ECONNRESET in cause',
      err('fetch failed', { cause: err('read ECONNRESET', { code: 'ECONNRESET' }) }),
      TransientError,
    ],
    ['socket hang up', err('socket hang up', {}), TransientError],
    ['ETIMEDOUT', err('timeout', { code: 'ETIMEDOUT' }), TransientError],
    [
      'S3 BadDigest',
      err('digest', { name: 'BadDigest', $metadata: { httpStatusCode: 400 } }),
      CorruptionError,
    ],
    [
      'Azurite MD5',
      err("Provided contentMD5 doesn't match.", { code: 'InvalidOperation', statusCode: 400 }),
      CorruptionError,
    ],
    ['GCS upload mismatch', err('did not match', { code: 'FILE_NO_UPLOAD' }), CorruptionError],
    [
      'missing bucket',
      err('bucket', { name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } }),
      FatalError,
    ],
    ['GCS missing bucket', err('The specified bucket does not exist.', { code: 404 }), FatalError],
    ['400', err('bad request', { name: 'InvalidArgument', $metadata: { httpStatusCode: 400 } }), FatalError],
    ['plain error', new Error('something else'), FatalError],
  ])('%s', (_label, input, type) => {
    const mapped = mapStorageError(input, ctx);
    expect(mapped).toBeInstanceOf(type);
    expect(mapped.message).toContain('t: get k');
    expect(mapped.cause).toBe(input);
  });
});

describe('mapFsError (local disk)', () => {
  const fsErr = (code: string) => Object.assign(new Error(`${code}: boom`), { code });
  it('calls ENOENT "not found" only when reading', () => {
    expect(mapFsError(fsErr('ENOENT'), 'k', 't', 'read')).toBeInstanceOf(NotFoundError);
    expect(mapFsError(fsErr('ENOENT'), 'k', 't', 'write')).toBeInstanceOf(TransientError);
  });
  it.each(['EIO', 'EAGAIN', 'EBUSY', 'EMFILE', 'ENFILE', 'ETIMEDOUT', 'ESTALE', 'EINTR'])(
    '%s is transient on reads and writes',
    (code) => {
      expect(mapFsError(fsErr(code), 'k', 't', 'read')).toBeInstanceOf(TransientError);
      expect(mapFsError(fsErr(code), 'k', 't', 'write')).toBeInstanceOf(TransientError);
    },
  );
  it('refusals and the rest are not retried', () => {
    expect(mapFsError(fsErr('EACCES'), 'k', 't', 'write')).toBeInstanceOf(StorageAuthError);
    expect(mapFsError(fsErr('ENOSPC'), 'k', 't', 'write')).toBeInstanceOf(FatalError);
  });
});
