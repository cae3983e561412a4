/** Google Cloud Storage (and its emulator): one object per key under a prefix, uploads checked by MD5. */
import { Storage as GcsClient, type Bucket, type CreateReadStreamOptions } from '@google-cloud/storage';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { mapStorageError, mapStreamErrors } from './errors.js';
import { TransientError } from '../errors.js';
import { checkedBufferMd5, idleWatchdog, KeySpace, md5Verifier, toReadable } from './keys.js';
import { whole, type Body, type ByteRange, type ObjectInfo, type PutOptions, type Storage } from './types.js';

export interface GcsStorageOptions {
  name: string;
  bucket: string;
  prefix?: string;
  projectId?: string;
  /** For the emulator or a private endpoint; absent means storage.googleapis.com. */
  apiEndpoint?: string;
  /** Metadata requests fail after this long; an upload fails when no byte moves for this long. */
  timeoutMs?: number;
}

/** The client's timeout is a total per request: uploads get a long one plus an idle watchdog. */
const UPLOAD_BACKSTOP_MS = 60 * 60_000;

interface GcsMetadata {
  size?: string | number;
  etag?: string;
  updated?: string;
}

export class GcsStorage implements Storage {
  readonly name: string;
  private readonly bucket: Bucket;
  private readonly uploadBucket: Bucket;
  private readonly keys: KeySpace;
  private readonly timeoutMs: number;

  constructor(opts: GcsStorageOptions) {
    this.name = opts.name;
    this.keys = new KeySpace(opts.prefix);
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    // Credentials come from the default chain (GOOGLE_APPLICATION_CREDENTIALS, metadata server).
    const client = (timeout: number) =>
      new GcsClient({
        projectId: opts.projectId,
        apiEndpoint: opts.apiEndpoint,
        timeout,
        // The retry decorator owns retries.
        retryOptions: { autoRetry: false, maxRetries: 0 },
      });
    this.bucket = client(this.timeoutMs).bucket(opts.bucket);
    this.uploadBucket = client(UPLOAD_BACKSTOP_MS).bucket(opts.bucket);
  }

  private fail(err: unknown, op: string, key?: string): never {
    throw mapStorageError(err, { target: this.name, op, key });
  }

  async put(key: string, content: Body, opts: PutOptions = {}): Promise<void> {
    const body = whole(content); // parts are joined: one request per object
    const file = this.uploadBucket.file(this.keys.full(key));
    const digest = Buffer.isBuffer(body) ? checkedBufferMd5(body, opts.md5, key) : opts.md5;
    const checked = Buffer.isBuffer(body) ? toReadable(body) : md5Verifier(body, opts.md5, key).stream;
    // One request per object (no resumable session): GCS checks md5Hash against the bytes it got,
    // and the client compares the stored MD5 with the one it computed, deleting on mismatch.
    const sink = file.createWriteStream({
      resumable: false,
      validation: 'md5',
      metadata: {
        contentType: 'application/octet-stream',
        ...(digest ? { md5Hash: digest.toString('base64') } : {}),
      },
    });
    const watched = idleWatchdog(checked, this.timeoutMs, () =>
      sink.destroy(new TransientError(`${this.name}: put ${key}: no progress for ${this.timeoutMs} ms`)),
    );
    try {
      await pipeline(watched.stream, sink);
    } catch (err) {
      this.fail(err, 'put', key);
    } finally {
      watched.stop();
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    if (range?.length === 0) return Readable.from([]);
    const opts: CreateReadStreamOptions = {};
    if (range && (range.offset > 0 || range.length !== undefined)) {
      opts.start = range.offset;
      if (range.length !== undefined) opts.end = range.offset + range.length - 1;
    }
    const src = this.bucket.file(this.keys.full(key)).createReadStream(opts);
    try {
      await firstResponse(src);
    } catch (err) {
      src.destroy();
      this.fail(err, 'get', key);
    }
    return mapStreamErrors(src, { target: this.name, op: 'get', key });
  }

  async stat(key: string): Promise<ObjectInfo> {
    try {
      const [m] = (await this.bucket.file(this.keys.full(key)).getMetadata()) as unknown as [GcsMetadata];
      return toInfo(key, m);
    } catch (err) {
      this.fail(err, 'stat', key);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const full = this.keys.listPrefix(prefix);
    let pageToken: string | undefined;
    do {
      let files, next;
      try {
        [files, next] = await this.bucket.getFiles({
          prefix: full,
          autoPaginate: false,
          maxResults: 1000,
          pageToken,
        });
      } catch (err) {
        this.fail(err, 'list', prefix);
      }
      for (const f of files) yield toInfo(this.keys.relative(f.name), f.metadata as GcsMetadata);
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
    } while (pageToken);
  }

  async delete(key: string): Promise<void> {
    try {
      await this.bucket.file(this.keys.full(key)).delete({ ignoreNotFound: true });
    } catch (err) {
      this.fail(err, 'delete', key);
    }
  }
}

function toInfo(key: string, m: GcsMetadata): ObjectInfo {
  return {
    key,
    size: Number(m.size ?? 0),
    etag: m.etag,
    modified: m.updated ? new Date(m.updated) : undefined,
  };
}

/**
 * The client sends the GET only once the stream is read, and reports a 404 as a stream error:
 * start it and wait for a good response, so get() itself throws NotFoundError.
 */
function firstResponse(src: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      src.off('error', onError);
      src.off('response', onResponse);
    };
    const onError = (err: unknown) => {
      cleanup();
      reject(err);
    };
    const onResponse = (res: { statusCode?: number }) => {
      // An error status is followed by an 'error' event carrying the body's message.
      if ((res.statusCode ?? 200) < 300) {
        cleanup();
        resolve();
      }
    };
    src.on('error', onError);
    src.on('response', onResponse);
    src.pause();
    src.read(0);
  });
}
