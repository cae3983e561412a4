/** Azure Blob Storage (and Azurite): block blobs under a prefix, every block checked by MD5 on arrival. */
import { BlobServiceClient, type BlockBlobUploadOptions, type ContainerClient } from '@azure/storage-blob';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { TransientError } from '../errors.js';
import { mapStorageError, mapStreamErrors } from './errors.js';
import { checkedBufferMd5, unquote, idleWatchdog, KeySpace, md5, md5Verifier, toReadable } from './keys.js';
import { definedOnly } from './keys.js';
import { whole, type Body, type ByteRange, type ObjectInfo, type PutOptions, type Storage } from './types.js';

export interface AzureStorageOptions {
  name: string;
  container: string;
  prefix?: string;
  connectionString: string;
  /** A request with no answer (or an upload with no progress) for this long fails with TransientError. */
  timeoutMs?: number;
  /** Buffers up to this size go in one Put Blob; larger bodies and streams are staged in blocks. */
  singlePutMaxBytes?: number;
  blockSizeBytes?: number;
  blockConcurrency?: number;
}

const MiB = 1024 * 1024;
const DEFAULTS = {
  timeoutMs: 30_000,
  singlePutMaxBytes: 64 * MiB,
  blockSizeBytes: 16 * MiB,
  blockConcurrency: 4,
};

export class AzureStorage implements Storage {
  readonly name: string;
  private readonly container: ContainerClient;
  private readonly keys: KeySpace;
  private readonly opts: AzureStorageOptions & typeof DEFAULTS;

  constructor(opts: AzureStorageOptions) {
    this.opts = { ...DEFAULTS, ...definedOnly(opts) } as typeof this.opts;
    this.name = opts.name;
    this.keys = new KeySpace(opts.prefix);
    // One try per call: the retry decorator owns retries, and the SDK's try timeout is only a
    // server-side hint, so each call below carries its own abort deadline.
    const service = BlobServiceClient.fromConnectionString(opts.connectionString, {
      retryOptions: { maxTries: 1 },
    });
    this.container = service.getContainerClient(opts.container);
  }

  /** Runs fn with an abort signal that fires after timeoutMs (or when the caller's watchdog says so). */
  private async call<T>(
    op: string,
    key: string | undefined,
    fn: (signal: AbortSignal, abort: () => void) => Promise<T>,
    deadline = true,
  ): Promise<T> {
    const ac = new AbortController();
    const timer = deadline ? setTimeout(() => ac.abort(), this.opts.timeoutMs) : undefined;
    try {
      return await fn(ac.signal, () => ac.abort());
    } catch (err) {
      if (ac.signal.aborted) {
        throw new TransientError(
          `${this.name}: ${op} ${key ?? ''}: no answer within ${this.opts.timeoutMs} ms`,
          {
            cause: err,
          },
        );
      }
      throw mapStorageError(err, { target: this.name, op, key });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a body as a stream under an idle watchdog, so a large upload is not cut by a total timeout. */
  private send<T>(
    op: string,
    key: string,
    body: Buffer,
    fn: (b: () => Readable, signal: AbortSignal) => Promise<T>,
  ) {
    return this.call(
      op,
      key,
      async (signal, abort) => {
        const watched = idleWatchdog(toReadable(body), this.opts.timeoutMs, abort);
        try {
          return await fn(() => watched.stream, signal);
        } finally {
          watched.stop();
        }
      },
      false,
    );
  }

  async put(key: string, content: Body, opts: PutOptions = {}): Promise<void> {
    const body = whole(content); // parts are joined: one request per object
    const blob = this.container.getBlockBlobClient(this.keys.full(key));
    if (Buffer.isBuffer(body) && body.length <= this.opts.singlePutMaxBytes) {
      const digest = checkedBufferMd5(body, opts.md5, key);
      // Content-MD5 is checked by the service on arrival and stored as the blob's MD5.
      const options = {
        transactionalContentMD5: digest,
        blobHTTPHeaders: { blobContentMD5: digest, blobContentType: 'application/octet-stream' },
      } as BlockBlobUploadOptions;
      await this.send('put', key, body, (b, abortSignal) =>
        blob.upload(b, body.length, { ...options, abortSignal }),
      );
      return;
    }
    await this.putBlocks(key, Buffer.isBuffer(body) ? toReadable(body) : body, opts.md5);
  }

  /** Stages blocks (each MD5-checked by the service) and commits only when the whole body checked out. */
  private async putBlocks(key: string, body: Readable, expected: Buffer | undefined): Promise<void> {
    const blob = this.container.getBlockBlobClient(this.keys.full(key));
    const verified = md5Verifier(body, expected, key);
    const uploadId = randomUUID();
    const ids: string[] = [];
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    const stage = (block: Buffer) => {
      const id = Buffer.from(`${uploadId}-${String(ids.length).padStart(6, '0')}`).toString('base64');
      ids.push(id);
      const p = this.send('put', key, block, (b, abortSignal) =>
        blob.stageBlock(id, b, block.length, { transactionalContentMD5: md5(block), abortSignal }),
      ).then(
        () => void inFlight.delete(p),
        (err: unknown) => {
          inFlight.delete(p);
          failure ??= err;
        },
      );
      inFlight.add(p);
    };
    try {
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      for await (const chunk of verified.stream as AsyncIterable<Buffer>) {
        pending.push(chunk);
        pendingBytes += chunk.length;
        while (pendingBytes >= this.opts.blockSizeBytes) {
          const all = Buffer.concat(pending);
          stage(all.subarray(0, this.opts.blockSizeBytes));
          pending = [all.subarray(this.opts.blockSizeBytes)];
          pendingBytes = pending[0]!.length;
          while (inFlight.size >= this.opts.blockConcurrency) await Promise.race(inFlight);
          if (failure) throw failure;
        }
      }
      if (pendingBytes > 0 || ids.length === 0) stage(Buffer.concat(pending));
      await Promise.all(inFlight);
      if (failure) throw failure;
    } catch (err) {
      verified.stream.destroy();
      await Promise.allSettled(inFlight);
      throw mapStorageError(err, { target: this.name, op: 'put', key });
    }
    const whole = verified.result().md5;
    await this.call('put', key, (abortSignal) =>
      blob.commitBlockList(ids, {
        blobHTTPHeaders: { blobContentMD5: whole, blobContentType: 'application/octet-stream' },
        abortSignal,
      }),
    );
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    if (range?.length === 0) return Readable.from([]);
    const blob = this.container.getBlobClient(this.keys.full(key));
    const res = await this.call('get', key, (abortSignal) =>
      blob.download(range?.offset ?? 0, range?.length, { abortSignal }),
    );
    return mapStreamErrors(res.readableStreamBody as Readable, { target: this.name, op: 'get', key });
  }

  async stat(key: string): Promise<ObjectInfo> {
    const p = await this.call('stat', key, (abortSignal) =>
      this.container.getBlobClient(this.keys.full(key)).getProperties({ abortSignal }),
    );
    return { key, size: p.contentLength ?? 0, etag: unquote(p.etag), modified: p.lastModified };
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const full = this.keys.listPrefix(prefix);
    let continuationToken: string | undefined;
    do {
      const page = await this.call('list', prefix, async (abortSignal) => {
        const pages = this.container
          .listBlobsFlat({ prefix: full, abortSignal })
          .byPage({ continuationToken, maxPageSize: 1000 });
        return (await pages.next()).value;
      });
      if (!page) break;
      for (const b of page.segment.blobItems) {
        yield {
          key: this.keys.relative(b.name),
          size: b.properties.contentLength ?? 0,
          etag: unquote(b.properties.etag),
          modified: b.properties.lastModified,
        };
      }
      continuationToken = page.continuationToken || undefined;
    } while (continuationToken);
  }

  async delete(key: string): Promise<void> {
    await this.call('delete', key, (abortSignal) =>
      this.container.getBlobClient(this.keys.full(key)).deleteIfExists({ abortSignal }),
    );
  }
}
