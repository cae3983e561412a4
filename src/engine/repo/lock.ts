/** Lock objects with an expiry: a running backup refreshes its lock, so prune never deletes what it writes. */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { ConflictError } from '../../errors.js';
import { getBuffer, type Storage } from '../../storage/types.js';

export const LOCKS_PREFIX = 'locks/';

export interface LockInfo {
  id: string;
  host: string;
  pid: number;
  time: string;
  expires: string;
  exclusive: boolean;
}

export interface LockOptions {
  exclusive?: boolean;
  /** How long the lock holds without a refresh. */
  ttlMs?: number;
  /** How often the holder refreshes it. */
  refreshMs?: number;
}

const DEFAULTS = { exclusive: false, ttlMs: 30 * 60_000, refreshMs: 5 * 60_000 };

/** Every unexpired lock; expired ones are deleted on the way (their holder is gone). */
export async function activeLocks(storage: Storage, now = Date.now()): Promise<LockInfo[]> {
  const out: LockInfo[] = [];
  for await (const o of storage.list(LOCKS_PREFIX)) {
    let info: LockInfo | undefined;
    try {
      info = JSON.parse((await getBuffer(storage, o.key)).toString('utf8')) as LockInfo;
    } catch {
      info = undefined; // vanished or unreadable: treat as stale
    }
    if (!info || !(Date.parse(info.expires) > now)) {
      await storage.delete(o.key);
      continue;
    }
    out.push(info);
  }
  return out;
}

export class RepoLock {
  private timer: NodeJS.Timeout | undefined;
  private released = false;

  private constructor(
    private readonly storage: Storage,
    readonly info: LockInfo,
    private readonly opts: typeof DEFAULTS,
  ) {}

  /** Takes a lock; ConflictError when an exclusive lock (or, for an exclusive one, any lock) is held. */
  static async acquire(storage: Storage, options: LockOptions = {}): Promise<RepoLock> {
    const opts = { ...DEFAULTS, ...options };
    const now = Date.now();
    const info: LockInfo = {
      id: randomBytes(16).toString('hex'),
      host: os.hostname(),
      pid: process.pid,
      time: new Date(now).toISOString(),
      expires: new Date(now + opts.ttlMs).toISOString(),
      exclusive: opts.exclusive,
    };
    const lock = new RepoLock(storage, info, opts);
    await lock.write();
    // Write first, then look: of two racing takers at least one sees the other.
    const others = (await activeLocks(storage)).filter((l) => l.id !== info.id);
    const blocking = others.filter((l) => l.exclusive || opts.exclusive);
    if (blocking.length > 0) {
      await lock.release();
      const b = blocking[0]!;
      throw new ConflictError(`repository is locked by ${b.host} pid ${b.pid} until ${b.expires}`);
    }
    lock.timer = setInterval(() => void lock.refresh().catch(() => undefined), opts.refreshMs);
    lock.timer.unref();
    return lock;
  }

  private get key(): string {
    return `${LOCKS_PREFIX}${this.info.id}`;
  }

  private write(): Promise<void> {
    return this.storage.put(this.key, Buffer.from(JSON.stringify(this.info)));
  }

  async refresh(): Promise<void> {
    if (this.released) return;
    this.info.expires = new Date(Date.now() + this.opts.ttlMs).toISOString();
    await this.write();
  }

  async release(): Promise<void> {
    this.released = true;
    if (this.timer) clearInterval(this.timer);
    await this.storage.delete(this.key);
  }
}
