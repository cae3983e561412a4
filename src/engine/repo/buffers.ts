import { FatalError } from '../../errors.js';

/**
 * Reuse of the big buffers a backup allocates over and over (12 MiB packs, ~1.5 MiB encoder
 * batches): allocating thousands of them leaves the allocator holding freed memory it does not
 * return, which shows as resident memory long after the buffers are gone.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  /** Buffers allocated so far (not found in the pool). */
  created = 0;

  constructor(
    /** Buffers kept for reuse. */
    private readonly keep: number,
    /** Larger buffers are not kept (a one-off big chunk should not stay resident). */
    private readonly maxKept: number,
    /**
     * Buffers over SharedArrayBuffers, which a worker thread is handed without a transfer (a
     * buffer transferred back is a new ArrayBuffer to V8 every time, and churns full collections).
     */
    private readonly shared = false,
    /** Bytes kept for reuse, all buffers together. */
    private readonly keepBytes = Infinity,
  ) {}

  /**
   * The smallest kept buffer of at least `size` bytes, or a new one: the whole of its ArrayBuffer
   * (so it can be transferred) or of its SharedArrayBuffer.
   */
  take(size: number): Buffer {
    let best = -1;
    this.free.forEach((b, i) => {
      if (b.length >= size && (best < 0 || b.length < this.free[best]!.length)) best = i;
    });
    if (best >= 0) return this.free.splice(best, 1)[0]!;
    this.created++;
    return this.shared ? Buffer.from(new SharedArrayBuffer(size)) : Buffer.allocUnsafeSlow(size);
  }

  /** Buffers kept for reuse now. */
  get kept(): number {
    return this.free.length;
  }

  /** Lets go of the kept buffers (no writer is open: a 12 MiB pack buffer should not outlive its backup). */
  clear(): void {
    this.free.length = 0;
  }

  /** Gives a buffer back; the caller must hold no view into it any more. */
  give(buffer: ArrayBuffer | Buffer): void {
    const b = Buffer.isBuffer(buffer) ? buffer : Buffer.from(buffer);
    if (b.byteOffset !== 0 || b.length !== b.buffer.byteLength) return;
    if (b.buffer instanceof SharedArrayBuffer !== this.shared) return;
    if (b.length > this.maxKept) return;
    this.free.push(b);
    // Past the count or the bytes kept, the smallest go first: the bigger buffers serve any smaller
    // request too. A pool full of small ones turned every bigger buffer away, and each request for
    // one allocated anew: after a database backup's 2 MiB replies, a portfolio's 4–16 MiB replies
    // left ~500 MB of garbage buffers between collections.
    let bytes = this.free.reduce((n, f) => n + f.length, 0);
    while (this.free.length > this.keep || bytes > this.keepBytes) {
      const smallest = this.free.reduce((m, f, i) => (f.length < this.free[m]!.length ? i : m), 0);
      bytes -= this.free.splice(smallest, 1)[0]!.length;
    }
  }
}

/**
 * A buffer shared by several holders (the packs holding views of an encoder reply): given back
 * when the last of them releases it. Starts held once, by its maker.
 */
export interface Hold {
  retain(): void;
  release(): void;
}

/** A hold that runs `free` once, when its count drops to zero. */
export function hold(free: () => void): Hold {
  let count = 1;
  return {
    retain() {
      if (count <= 0) throw new FatalError('buffer hold: retained after its release');
      count++;
    },
    release() {
      if (count <= 0) throw new FatalError('buffer hold: released more often than held');
      if (--count === 0) free();
    },
  };
}

/**
 * Pack buffers, for the blobs packs copy: 2 MiB each (or a bigger blob's size), six to a full
 * pack, and up to three packs per writer (one filling, two uploading).
 */
export const packBuffers = new BufferPool(24, 64 * 1024 * 1024, false, 48 * 1024 * 1024);
/** Encoder batch buffers: two batches per thread in flight, shared with the threads. */
export const batchBuffers = new BufferPool(8, 4 * 1024 * 1024, true);
/**
 * Encoder reply buffers, shared with the threads: a thread writes a batch's or a file's sealed
 * blobs into one and nothing crosses back. Up to three packs (one filling, two uploading) hold the
 * replies their blobs are in, besides the replies being encoded: with 8 kept, a portfolio backup
 * turned a third of them away and allocated anew.
 */
export const replyBuffers = new BufferPool(16, 16 * 1024 * 1024, true, 64 * 1024 * 1024);
