// Unit tests of the retry and limit decorators, around a real local-disk store with failures injected in front of it.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FatalError, NotFoundError, TransientError } from '../../src/errors.js';
import { withLimit } from '../../src/storage/limit.js';
import { LocalStorage } from '../../src/storage/local.js';
import { backoffDelay, withRetry } from '../../src/storage/retry.js';
import {
  getBuffer,
  type ByteRange,
  type ObjectInfo,
  type PutOptions,
  type Storage,
} from '../../src/storage/types.js';

/** Fails the next `failures` calls with the given error, then passes through; counts calls. */
class Flaky implements Storage {
  calls = 0;
  inFlight = 0;
  maxInFlight = 0;
  starts: number[] = [];
  constructor(
    private readonly inner: Storage,
    public failures = 0,
    public error: () => Error = () => new TransientError('blip'),
    private readonly delayMs = 0,
  ) {}
  get name() {
    return this.inner.name;
  }
  private async step<T>(fn: () => Promise<T>): Promise<T> {
    this.calls++;
    this.starts.push(Date.now());
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.delayMs) await sleep(this.delayMs);
      if (this.failures > 0) {
        this.failures--;
        throw this.error();
      }
      return await fn();
    } finally {
      this.inFlight--;
    }
  }
  put(key: string, body: Buffer | Readable, opts?: PutOptions) {
    return this.step(() => this.inner.put(key, body, opts));
  }
  get(key: string, range?: ByteRange) {
    return this.step(() => this.inner.get(key, range));
  }
  stat(key: string) {
    return this.step(() => this.inner.stat(key));
  }
  delete(key: string) {
    return this.step(() => this.inner.delete(key));
  }
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let n = 0;
    for await (const o of this.inner.list(prefix)) {
      // Break the listing half-way once, as a dropped connection between pages would.
      if (n++ === 2 && this.failures > 0) {
        this.failures--;
        throw this.error();
      }
      yield o;
    }
  }
}

let dir: string;
let local: LocalStorage;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'wv-decorators-'));
  local = new LocalStorage('local', dir);
  for (let i = 0; i < 5; i++) await local.put(`l/${i}`, Buffer.from(String(i)));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('retry decorator', () => {
  it('returns success after transient failures, waiting with backoff', async () => {
    const flaky = new Flaky(local, 2);
    const waits: number[] = [];
    const s = withRetry(flaky, { attempts: 3, baseDelayMs: 10, onRetry: (i) => waits.push(i.delayMs) });
    await s.put('a', Buffer.from('hello'));
    expect(flaky.calls).toBe(3);
    expect(waits).toHaveLength(2);
    expect((await getBuffer(local, 'a')).toString()).toBe('hello');
  });

  it('gives up after the bounded number of attempts with the TransientError', async () => {
    const flaky = new Flaky(local, 10);
    const s = withRetry(flaky, { attempts: 3, baseDelayMs: 1 });
    await expect(s.stat('a')).rejects.toBeInstanceOf(TransientError);
    expect(flaky.calls).toBe(3);
  });

  it('never retries errors that are not transient', async () => {
    for (const error of [
      () => new NotFoundError('gone'),
      () => new FatalError('bad'),
      () => new Error('raw'),
    ]) {
      const flaky = new Flaky(local, 5, error);
      await expect(withRetry(flaky, { attempts: 5, baseDelayMs: 1 }).get('a')).rejects.toThrow();
      expect(flaky.calls).toBe(1);
    }
  });

  it('does not replay a stream body', async () => {
    const flaky = new Flaky(local, 1);
    await expect(
      withRetry(flaky, { baseDelayMs: 1 }).put('s', Readable.from([Buffer.from('x')])),
    ).rejects.toBeInstanceOf(TransientError);
    expect(flaky.calls).toBe(1);
  });

  it('restarts a broken listing without yielding a key twice', async () => {
    const flaky = new Flaky(local, 1);
    const keys: string[] = [];
    for await (const o of withRetry(flaky, { baseDelayMs: 1 }).list('l/')) keys.push(o.key);
    expect(keys.sort()).toEqual(['l/0', 'l/1', 'l/2', 'l/3', 'l/4']);
  });

  it('backs off exponentially with jitter, capped', () => {
    expect(backoffDelay(1, 100, 10_000, () => 0)).toBe(50);
    expect(backoffDelay(1, 100, 10_000, () => 1)).toBe(100);
    expect(backoffDelay(4, 100, 10_000, () => 1)).toBe(800);
    expect(backoffDelay(30, 100, 10_000, () => 1)).toBe(10_000);
  });
});

describe('limit decorator', () => {
  it('keeps at most N requests in flight', async () => {
    const slow = new Flaky(local, 0, undefined, 20);
    const s = withLimit(slow, { concurrency: 3 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => s.stat(`l/${i % 5}`)));
    expect(slow.calls).toBe(20);
    expect(slow.maxInFlight).toBe(3);
  });

  it('spaces request starts to the rate limit', async () => {
    const counted = new Flaky(local);
    const s = withLimit(counted, { concurrency: 10, ratePerSecond: 50 });
    await Promise.all(Array.from({ length: 11 }, (_, i) => s.stat(`l/${i % 5}`)));
    const span = counted.starts.at(-1)! - counted.starts[0]!;
    expect(span).toBeGreaterThanOrEqual(190);
  });
});
