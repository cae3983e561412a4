/** Limit decorator: at most N requests in flight to a target, and optionally at most R starts per second. */
import pLimit, { type LimitFunction } from 'p-limit';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Body, ByteRange, ObjectInfo, PutOptions, Storage } from './types.js';

export interface LimitOptions {
  concurrency: number;
  /** Request starts per second; 0 or absent for no limit. */
  ratePerSecond?: number;
}

export class LimitedStorage implements Storage {
  private readonly limit: LimitFunction;
  private readonly intervalMs: number;
  private nextStart = 0;

  constructor(
    private readonly inner: Storage,
    opts: LimitOptions,
  ) {
    this.limit = pLimit(opts.concurrency);
    this.intervalMs = opts.ratePerSecond ? 1000 / opts.ratePerSecond : 0;
  }

  get name(): string {
    return this.inner.name;
  }

  /** Spaces request starts evenly; reserving the slot first keeps the order fair. */
  private async paced<T>(fn: () => Promise<T>): Promise<T> {
    if (this.intervalMs > 0) {
      const now = Date.now();
      const at = Math.max(now, this.nextStart);
      this.nextStart = at + this.intervalMs;
      if (at > now) await sleep(at - now);
    }
    return fn();
  }

  private run<T>(fn: () => Promise<T>): Promise<T> {
    return this.limit(() => this.paced(fn));
  }

  put(key: string, body: Body, opts?: PutOptions): Promise<void> {
    return this.run(() => this.inner.put(key, body, opts));
  }

  /** The slot is held until the response starts, not while the caller reads the body: a reader that never finishes must not starve the target. */
  get(key: string, range?: ByteRange): Promise<Readable> {
    return this.run(() => this.inner.get(key, range));
  }

  stat(key: string): Promise<ObjectInfo> {
    return this.run(() => this.inner.stat(key));
  }

  delete(key: string): Promise<void> {
    return this.run(() => this.inner.delete(key));
  }

  /** Takes one slot (and one rate token) to start; later pages follow at the reader's pace. */
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const it = this.inner.list(prefix)[Symbol.asyncIterator]();
    try {
      let step = await this.run(() => it.next());
      while (!step.done) {
        yield step.value;
        step = await it.next();
      }
    } finally {
      await it.return?.();
    }
  }

  get usage(): Storage['usage'] {
    const inner = this.inner;
    if (!inner.usage) return undefined;
    return () => this.run(() => inner.usage!());
  }

  get localFile(): Storage['localFile'] {
    return this.inner.localFile?.bind(this.inner);
  }

  get sync(): Storage['sync'] {
    const inner = this.inner;
    if (!inner.sync) return undefined;
    return () => this.run(() => inner.sync!());
  }

  get sweepTemp(): Storage['sweepTemp'] {
    const inner = this.inner;
    if (!inner.sweepTemp) return undefined;
    return (maxAgeMs?: number) => this.run(() => inner.sweepTemp!(maxAgeMs));
  }
}

export function withLimit(storage: Storage, opts: LimitOptions): Storage {
  return new LimitedStorage(storage, opts);
}
