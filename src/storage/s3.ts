/** S3 and S3-compatible stores (MinIO, Supabase Storage, s3rver): one object per key under a prefix. */
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import { mapStorageError, mapStreamErrors } from './errors.js';
import { checkedBufferMd5, unquote, KeySpace, md5Verifier } from './keys.js';
import { definedOnly } from './keys.js';
import { whole, type Body, type ByteRange, type ObjectInfo, type PutOptions, type Storage } from './types.js';

export interface S3StorageOptions {
  name: string;
  bucket: string;
  prefix?: string;
  region?: string;
  /** For S3-compatible stores, e.g. http://127.0.0.1:9000. */
  endpoint?: string;
  forcePathStyle?: boolean;
  /** Absent: the SDK's default chain (env, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** A socket with no traffic for this long fails with TransientError. */
  idleTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Buffers up to this size go in one PUT with Content-MD5; larger bodies use multipart. */
  singlePutMaxBytes?: number;
  partSizeBytes?: number;
  /** Parts in flight per multipart upload. */
  partConcurrency?: number;
}

const DEFAULTS = {
  idleTimeoutMs: 30_000,
  connectTimeoutMs: 5_000,
  singlePutMaxBytes: 64 * 1024 * 1024,
  partSizeBytes: 16 * 1024 * 1024,
  partConcurrency: 4,
};

export class S3Storage implements Storage {
  readonly name: string;
  private readonly client: S3Client;
  private readonly keys: KeySpace;
  private readonly opts: S3StorageOptions & typeof DEFAULTS;

  constructor(opts: S3StorageOptions) {
    this.opts = { ...DEFAULTS, ...definedOnly(opts) } as typeof this.opts;
    this.name = opts.name;
    this.keys = new KeySpace(opts.prefix);
    this.client = new S3Client({
      region: opts.region ?? 'us-east-1',
      endpoint: opts.endpoint,
      forcePathStyle: opts.forcePathStyle ?? false,
      credentials: opts.credentials,
      // The retry decorator owns retries, so a dead server fails fast and once.
      maxAttempts: 1,
      requestHandler: {
        connectionTimeout: this.opts.connectTimeoutMs,
        socketTimeout: this.opts.idleTimeoutMs,
      },
    });
  }

  private fail(err: unknown, op: string, key?: string): never {
    throw mapStorageError(err, { target: this.name, op, key });
  }

  async put(key: string, content: Body, opts: PutOptions = {}): Promise<void> {
    const body = whole(content); // parts are joined: one request per object
    const Key = this.keys.full(key);
    const Bucket = this.opts.bucket;
    if (Buffer.isBuffer(body) && body.length <= this.opts.singlePutMaxBytes) {
      const digest = checkedBufferMd5(body, opts.md5, key);
      try {
        await this.client.send(
          new PutObjectCommand({ Bucket, Key, Body: body, ContentMD5: digest.toString('base64') }),
        );
      } catch (err) {
        this.fail(err, 'put', key);
      }
      return;
    }
    // Multipart: each part carries the SDK's CRC32 checksum, which S3 verifies; our own MD5
    // check fails the body before its end, so a mismatching upload is never completed.
    const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
    const verified = md5Verifier(source, opts.md5, key);
    let bodyError: unknown;
    verified.stream.on('error', (err) => (bodyError = err));
    const upload = new Upload({
      client: this.client,
      params: { Bucket, Key, Body: verified.stream, ContentLength: opts.size },
      partSize: this.opts.partSizeBytes,
      queueSize: this.opts.partConcurrency,
      leavePartsOnError: true,
    });
    try {
      await upload.done();
    } catch (err) {
      await this.abortQuietly(upload, Key);
      this.fail(bodyError ?? err, 'put', key);
    }
  }

  private async abortQuietly(upload: Upload, Key: string): Promise<void> {
    const UploadId = (upload as unknown as { uploadId?: string }).uploadId;
    if (!UploadId) return;
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.opts.bucket, Key, UploadId }));
    } catch {
      // Best effort: a lifecycle rule on the bucket cleans up parts we could not abort.
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    if (range?.length === 0) return Readable.from([]);
    const Range = range
      ? `bytes=${range.offset}-${range.length !== undefined ? range.offset + range.length - 1 : ''}`
      : undefined;
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.opts.bucket, Key: this.keys.full(key), Range }),
      );
      return mapStreamErrors(res.Body as Readable, { target: this.name, op: 'get', key });
    } catch (err) {
      this.fail(err, 'get', key);
    }
  }

  async stat(key: string): Promise<ObjectInfo> {
    try {
      const res = await this.client.send(
        new HeadObjectCommand({ Bucket: this.opts.bucket, Key: this.keys.full(key) }),
      );
      return { key, size: res.ContentLength ?? 0, etag: unquote(res.ETag), modified: res.LastModified };
    } catch (err) {
      this.fail(err, 'stat', key);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const Prefix = this.keys.listPrefix(prefix);
    let ContinuationToken: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.opts.bucket, Prefix, ContinuationToken, MaxKeys: 1000 }),
        );
      } catch (err) {
        this.fail(err, 'list', prefix);
      }
      for (const o of page.Contents ?? []) {
        if (!o.Key) continue;
        yield {
          key: this.keys.relative(o.Key),
          size: o.Size ?? 0,
          etag: unquote(o.ETag),
          modified: o.LastModified,
        };
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async delete(key: string): Promise<void> {
    try {
      // S3 answers 204 whether or not the key existed.
      await this.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: this.keys.full(key) }));
    } catch (err) {
      const mapped = mapStorageError(err, { target: this.name, op: 'delete', key });
      if (mapped.code !== 'not_found') throw mapped;
    }
  }

  destroy(): void {
    this.client.destroy();
  }
}
