/** Builds a target's Storage from its config: the provider, wrapped in the limit and retry decorators. */
import path from 'node:path';
import type { TargetConfig } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import type { Readable } from 'node:stream';
import { LocalStorage } from './local.js';
import { withRetry, type RetryOptions } from './retry.js';
import { withSharedLimit, type SharedLimitOptions } from './shared-limit.js';
import type { Body, ByteRange, ObjectInfo, PutOptions, Storage } from './types.js';

/**
 * A cloud provider whose SDK is imported on first use: the three SDKs cost ~70 MB of memory in
 * a process that only ever talks to local disks.
 */
class LazyStorage implements Storage {
  private inner: Promise<Storage> | undefined;

  constructor(
    readonly name: string,
    private readonly load: () => Promise<Storage>,
  ) {}

  private provider(): Promise<Storage> {
    this.inner ??= this.load();
    this.inner.catch(() => (this.inner = undefined));
    return this.inner;
  }

  async put(key: string, body: Body, opts?: PutOptions): Promise<void> {
    return (await this.provider()).put(key, body, opts);
  }
  async get(key: string, range?: ByteRange): Promise<Readable> {
    return (await this.provider()).get(key, range);
  }
  async stat(key: string): Promise<ObjectInfo> {
    return (await this.provider()).stat(key);
  }
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    yield* (await this.provider()).list(prefix);
  }
  async delete(key: string): Promise<void> {
    return (await this.provider()).delete(key);
  }
  async usage(): Promise<{ usedBytes?: number; freeBytes?: number }> {
    const p = await this.provider();
    return p.usage ? p.usage() : {};
  }
}

export interface StorageFactoryOptions {
  /** A request with no answer (no progress, for uploads) for this long fails as transient. */
  timeoutMs?: number;
  /** Retry settings, or false for none (tests of raw provider behaviour). */
  retry?: RetryOptions | false;
  /** Limits held in Redis and shared by every process (the service); absent: this process's own. */
  shared?: SharedLimitOptions;
}

/** Reads a credential from the env variable the config names; the value is never logged. */
function secret(env: NodeJS.ProcessEnv, target: string, variable: string): string {
  const value = env[variable];
  if (!value) throw new ConfigError(`target ${target}: environment variable ${variable} is not set`);
  return value;
}

export function createProvider(
  target: TargetConfig,
  env: NodeJS.ProcessEnv = process.env,
  opts: StorageFactoryOptions = {},
): Storage {
  switch (target.type) {
    case 'local':
      return new LocalStorage(target.name, path.join(target.path, target.prefix));
    case 's3': {
      const { accessKeyIdEnv: idVar, secretAccessKeyEnv: secretVar } = target;
      if (Boolean(idVar) !== Boolean(secretVar)) {
        throw new ConfigError(
          `target ${target.name}: set both accessKeyIdEnv and secretAccessKeyEnv, or neither`,
        );
      }
      const s3 = {
        name: target.name,
        bucket: target.bucket,
        prefix: target.prefix,
        region: target.region,
        endpoint: target.endpoint,
        forcePathStyle: target.forcePathStyle,
        // Neither named: the SDK's default chain (AWS_* env, profile, instance role).
        credentials:
          idVar && secretVar
            ? {
                accessKeyId: secret(env, target.name, idVar),
                secretAccessKey: secret(env, target.name, secretVar),
              }
            : undefined,
        idleTimeoutMs: opts.timeoutMs,
      };
      return new LazyStorage(target.name, async () => new (await import('./s3.js')).S3Storage(s3));
    }
    case 'gcs': {
      const gcs = {
        name: target.name,
        bucket: target.bucket,
        prefix: target.prefix,
        projectId: target.projectId,
        apiEndpoint: target.apiEndpoint,
        timeoutMs: opts.timeoutMs,
      };
      return new LazyStorage(target.name, async () => new (await import('./gcs.js')).GcsStorage(gcs));
    }
    case 'azure': {
      const azure = {
        name: target.name,
        container: target.container,
        prefix: target.prefix,
        connectionString: secret(env, target.name, target.connectionStringEnv),
        timeoutMs: opts.timeoutMs,
      };
      return new LazyStorage(target.name, async () => new (await import('./azure.js')).AzureStorage(azure));
    }
  }
}

/** The Storage every caller should use: retries outside the limiter, so a backoff wait holds no slot. */
export function createStorage(
  target: TargetConfig,
  env: NodeJS.ProcessEnv = process.env,
  opts: StorageFactoryOptions = {},
): Storage {
  const limited = withSharedLimit(
    createProvider(target, env, opts),
    { concurrency: target.concurrency, ratePerSecond: target.rateLimit, mbPerSecond: target.mbPerSecond },
    opts.shared,
  );
  return opts.retry === false ? limited : withRetry(limited, opts.retry);
}
