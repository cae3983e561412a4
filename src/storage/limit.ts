/**
 * Limit decorator: requests to a target pass a gate (slots for concurrency, a pace for requests per
 * second and for bytes per second). The gate here is this process's own; `shared-limit.ts` builds
 * one held in Redis, so every worker process shares the target's limits.
 */
import { Transform, pipeline, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { isParts } from './types.js';
import type { Body, ByteRange, ObjectInfo, PutOptions, Storage } from './types.js';

export interface LimitOptions {
  concurrency: number;
  /** Request starts per second; 0 or absent for no limit. */
  ratePerSecond?: number;
  /** Megabytes (10^6 bytes) per second read and written; 0 or absent for no limit. */
  mbPerSecond?: number;
}

/** Concurrency: `acquire` resolves with the function that frees the slot. */
export interface Slots {
  acquire(): Promise<() => void>;
}

/** A pace: `reserve(cost)` books `cost` units and says how many ms to wait before using them. */
export interface Pace {
  reserve(cost: number): Promise<number>;
}

export interface Gate {
  /** Taken in order, released in reverse. */
  slots: Slots[];
  requests?: Pace | undefined;
  bytes?: Pace | undefined;
}

/** A counting semaphore; waiters are served first come, first served. */
export class LocalSlots implements Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(size: number) {
    this.free = size;
  }

  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}

/** Spaces starts evenly; reserving the slot first keeps the order fair (GCRA without burst). */
export class LocalPace implements Pace {
  private next = 0;

  constructor(private readonly msPerUnit: number) {}

  reserve(cost: number): Promise<number> {
    const now = Date.now();
    const at = Math.max(now, this.next);
    this.next = at + cost * this.msPerUnit;
    return Promise.resolve(at - now);
  }
}

export function localGate(opts: LimitOptions): Gate {
  return {
    slots: [new LocalSlots(opts.concurrency)],
    requests: opts.ratePerSecond ? new LocalPace(1000 / opts.ratePerSecond) : undefined,
    bytes: opts.mbPerSecond ? new LocalPace(1000 / (opts.mbPerSecond * 1e6)) : undefined,
  };
}

async function paced(pace: Pace | undefined, cost: number): Promise<void> {
  if (!pace || cost <= 0) return;
  const wait = await pace.reserve(cost);
  if (wait > 0) await sleep(wait);
}

/** A stream that lets each chunk through once the byte pace allows it. */
function throttled(source: Readable, pace: Pace): Readable {
  const gate = new Transform({
    transform(chunk: Buffer, _enc, done) {
      paced(pace, chunk.length).then(() => done(null, chunk), done);
    },
  });
  return pipeline(source, gate, () => undefined);
}

export class LimitedStorage implements Storage {
  constructor(
    private readonly inner: Storage,
    private readonly gate: Gate,
  ) {}

  get name(): string {
    return this.inner.name;
  }

  private async run<T>(fn: () => Promise<T>): Promise<T> {
    const releases: (() => void)[] = [];
    try {
      for (const s of this.gate.slots) releases.push(await s.acquire());
      await paced(this.gate.requests, 1);
      return await fn();
    } finally {
      for (const release of releases.reverse()) release();
    }
  }

  /** Bandwidth is waited for before the slot is taken, so a big upload's wait holds no slot. */
  async put(key: string, body: Body, opts?: PutOptions): Promise<void> {
    const bytes = this.gate.bytes;
    if (bytes && Buffer.isBuffer(body)) await paced(bytes, body.length);
    else if (bytes && isParts(body))
      await paced(
        bytes,
        body.reduce((n, b) => n + b.length, 0),
      );
    else if (bytes) body = throttled(body as Readable, bytes);
    return this.run(() => this.inner.put(key, body, opts));
  }

  /** The slot is held until the response starts, not while the caller reads the body: a reader that never finishes must not starve the target. */
  async get(key: string, range?: ByteRange): Promise<Readable> {
    const stream = await this.run(() => this.inner.get(key, range));
    return this.gate.bytes ? throttled(stream, this.gate.bytes) : stream;
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

/** This process's limits only (the CLI, tests); the service uses `withSharedLimit`. */
export function withLimit(storage: Storage, opts: LimitOptions): Storage {
  return new LimitedStorage(storage, localGate(opts));
}
