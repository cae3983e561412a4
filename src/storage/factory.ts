/** Builds a target's Storage from its config: the provider, wrapped in the limit and retry decorators. */
import path from 'node:path';
import type { TargetConfig } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import { AzureStorage } from './azure.js';
import { GcsStorage } from './gcs.js';
import { withLimit } from './limit.js';
import { LocalStorage } from './local.js';
import { withRetry, type RetryOptions } from './retry.js';
import { S3Storage } from './s3.js';
import type { Storage } from './types.js';

export interface StorageFactoryOptions {
  /** A request with no answer (no progress, for uploads) for this long fails as transient. */
  timeoutMs?: number;
  /** Retry settings, or false for none (tests of raw provider behaviour). */
  retry?: RetryOptions | false;
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
      return new S3Storage({
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
      });
    }
    case 'gcs':
      return new GcsStorage({
        name: target.name,
        bucket: target.bucket,
        prefix: target.prefix,
        projectId: target.projectId,
        apiEndpoint: target.apiEndpoint,
        timeoutMs: opts.timeoutMs,
      });
    case 'azure':
      return new AzureStorage({
        name: target.name,
        container: target.container,
        prefix: target.prefix,
        connectionString: secret(env, target.name, target.connectionStringEnv),
        timeoutMs: opts.timeoutMs,
      });
  }
}

/** The Storage every caller should use: retries outside the limiter, so a backoff wait holds no slot. */
export function createStorage(
  target: TargetConfig,
  env: NodeJS.ProcessEnv = process.env,
  opts: StorageFactoryOptions = {},
): Storage {
  const limited = withLimit(createProvider(target, env, opts), {
    concurrency: target.concurrency,
    ratePerSecond: target.rateLimit,
  });
  return opts.retry === false ? limited : withRetry(limited, opts.retry);
}
