/** Retry decorator: wraps any Storage and retries TransientErrors with exponential backoff and jitter. */
import { definedOnly } from './keys.js';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { isRetryable } from '../errors.js';
import {
  isParts,
  type Body,
  type ByteRange,
  type ObjectInfo,
  type PutOptions,
  type Storage,
} from './types.js';

export interface RetryInfo {
  target: string;
  op: string;
  key?: string;
  /** The attempt that failed, from 1. */
  attempt: number;
  delayMs: number;
  error: unknown;
}

export interface RetryOptions {
  /** Tries in all, the first included. */
  attempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Called before each wait, for logs and metrics. */
  onRetry?: (info: RetryInfo) => void;
}

const DEFAULTS = { attempts: 5, baseDelayMs: 200, maxDelayMs: 10_000 };

/**
 * Delay before retry number `attempt` (from 1): half fixed, half random ("equal jitter"), so
 * many workers failing together do not come back together, and no wait is near zero.
 */
export function backoffDelay(attempt: number, base: number, max: number, random = Math.random): number {
  const ceiling = Math.min(max, base * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export class RetryStorage implements Storage {
  private readonly opts: RetryOptions & typeof DEFAULTS;

  constructor(
    private readonly inner: Storage,
    opts: RetryOptions = {},
  ) {
    this.opts = { ...DEFAULTS, ...definedOnly(opts) } as typeof this.opts;
  }

  get name(): string {
    return this.inner.name;
  }

  private async retry<T>(op: string, key: string | undefined, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (error) {
        // Anything not marked transient (not found, auth, corruption, fatal) fails at once.
        if (!isRetryable(error) || attempt >= this.opts.attempts) throw error;
        const delayMs = backoffDelay(attempt, this.opts.baseDelayMs, this.opts.maxDelayMs);
        this.opts.onRetry?.({ target: this.name, op, key, attempt, delayMs, error });
        await sleep(delayMs);
      }
    }
  }

  put(key: string, body: Body, opts?: PutOptions): Promise<void> {
    // A stream is consumed by the first try and cannot be replayed; callers that want retries
    // pass Buffers or parts (packs are parts).
    if (!Buffer.isBuffer(body) && !isParts(body)) return this.inner.put(key, body, opts);
    return this.retry('put', key, () => this.inner.put(key, body, opts));
  }

  get(key: string, range?: ByteRange): Promise<Readable> {
    return this.retry('get', key, () => this.inner.get(key, range));
  }

  stat(key: string): Promise<ObjectInfo> {
    return this.retry('stat', key, () => this.inner.stat(key));
  }

  delete(key: string): Promise<void> {
    return this.retry('delete', key, () => this.inner.delete(key));
  }

  /** A listing that breaks is started again, skipping keys already yielded. */
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const seen = new Set<string>();
    for (let attempt = 1; ; attempt++) {
      try {
        for await (const o of this.inner.list(prefix)) {
          if (seen.has(o.key)) continue;
          seen.add(o.key);
          yield o;
        }
        return;
      } catch (error) {
        if (!isRetryable(error) || attempt >= this.opts.attempts) throw error;
        const delayMs = backoffDelay(attempt, this.opts.baseDelayMs, this.opts.maxDelayMs);
        this.opts.onRetry?.({ target: this.name, op: 'list', key: prefix, attempt, delayMs, error });
        await sleep(delayMs);
      }
    }
  }

  get usage(): Storage['usage'] {
    const inner = this.inner;
    if (!inner.usage) return undefined;
    return () => this.retry('usage', undefined, () => inner.usage!());
  }

  get localFile(): Storage['localFile'] {
    return this.inner.localFile?.bind(this.inner);
  }

  get sync(): Storage['sync'] {
    const inner = this.inner;
    if (!inner.sync) return undefined;
    return () => this.retry('sync', undefined, () => inner.sync!());
  }

  get sweepTemp(): Storage['sweepTemp'] {
    const inner = this.inner;
    if (!inner.sweepTemp) return undefined;
    return (maxAgeMs?: number) => this.retry('sweepTemp', undefined, () => inner.sweepTemp!(maxAgeMs));
  }
}

export function withRetry(storage: Storage, opts?: RetryOptions): Storage {
  return new RetryStorage(storage, opts);
}
