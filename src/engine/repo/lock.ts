/**
 * Lock objects with an expiry: a running backup refreshes its lock, so prune never deletes what it
 * writes; writers serialise on a write lock; a lock whose holder is provably gone is broken.
 */
import { randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConflictError, NotFoundError } from '../../errors.js';
import { definedOnly } from '../../storage/keys.js';
import { getBuffer, type Storage } from '../../storage/types.js';

export const LOCKS_PREFIX = 'locks/';

export interface LockInfo {
  id: string;
  host: string;
  pid: number;
  /** The holder's PID namespace (Linux): a PID is only checked from the same one. */
  pidNs?: string;
  time: string;
  /** When the holder last wrote it, and how often it does. */
  refreshed?: string;
  refreshMs?: number;
  expires: string;
  exclusive: boolean;
  /** A writer's lock: writers take turns, so each sees what the one before stored (dedup). */
  write?: boolean;
}

/** A lock broken on the way, and why; the default reports it as a process warning. */
export type OnLockBreak = (lock: LockInfo, reason: string) => void;

export interface LockOptions {
  exclusive?: boolean;
  /** A write lock: blocked by another write lock or an exclusive one; blocks those. */
  write?: boolean;
  /** How long the lock holds without a refresh. */
  ttlMs?: number;
  /** How often the holder refreshes it. */
  refreshMs?: number;
  /** How long to wait for blocking locks to go before ConflictError (0: do not wait). */
  waitMs?: number;
  /** Between looks while waiting (jittered ±50%). */
  pollMs?: number;
  onBreak?: OnLockBreak;
}

/** A lock not refreshed for this many of its refresh intervals is stale: its holder is stuck or gone. */
export const STALE_REFRESHES = 2;
export const LOCK_BROKEN_WARNING = 'WEDVAULT_LOCK_BROKEN';

const DEFAULTS = {
  exclusive: false,
  write: false,
  ttlMs: 30 * 60_000,
  refreshMs: 5 * 60_000,
  waitMs: 0,
  pollMs: 1000,
  onBreak: ((lock, reason) =>
    process.emitWarning(`repository lock ${lock.id} of ${lock.host} pid ${lock.pid} broken: ${reason}`, {
      code: LOCK_BROKEN_WARNING,
    })) as OnLockBreak,
};

function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}
const PID_NS = pidNamespace();

/** False only when the process certainly does not exist (EPERM: it exists, owned by another user). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Why a lock no longer holds, or undefined while it does. */
export function lockBrokenBecause(info: LockInfo, now = Date.now()): string | undefined {
  if (!(Date.parse(info.expires) > now)) return `expired at ${info.expires}`;
  if (
    info.refreshed &&
    info.refreshMs &&
    now - Date.parse(info.refreshed) > STALE_REFRESHES * info.refreshMs
  ) {
    return `not refreshed since ${info.refreshed} (every ${info.refreshMs} ms)`;
  }
  const sameMachine = info.host === os.hostname() && PID_NS !== undefined && info.pidNs === PID_NS;
  if (sameMachine && info.pid !== process.pid && !processExists(info.pid)) {
    return `process ${info.pid} is gone from ${info.host}`;
  }
  return undefined;
}

/** Every lock that holds; those that do not are deleted on the way and reported to onBreak. */
export async function activeLocks(
  storage: Storage,
  now = Date.now(),
  onBreak: OnLockBreak = DEFAULTS.onBreak,
): Promise<LockInfo[]> {
  const out: LockInfo[] = [];
  for await (const o of storage.list(LOCKS_PREFIX)) {
    let info: LockInfo | undefined;
    try {
      info = JSON.parse((await getBuffer(storage, o.key)).toString('utf8')) as LockInfo;
    } catch (err) {
      if (err instanceof NotFoundError) continue; // released meanwhile
      info = undefined; // unreadable: no holder can be told from it
    }
    const reason = info ? lockBrokenBecause(info, now) : 'unreadable';
    if (reason === undefined) {
      out.push(info!);
      continue;
    }
    await storage.delete(o.key);
    if (info) onBreak(info, reason);
  }
  return out;
}

/** Whether a held lock keeps a taker with these options out. */
function blocks(held: LockInfo, wanted: { exclusive: boolean; write: boolean }): boolean {
  return held.exclusive || wanted.exclusive || (held.write === true && wanted.write);
}

export class RepoLock {
  private timer: NodeJS.Timeout | undefined;
  private released = false;

  private constructor(
    private readonly storage: Storage,
    readonly info: LockInfo,
    private readonly opts: typeof DEFAULTS,
  ) {}

  /**
   * Takes a lock, waiting up to waitMs for blocking ones to go; ConflictError after that. Shared
   * locks yield to exclusive ones, write locks also to each other, exclusive locks to any.
   */
  static async acquire(storage: Storage, options: LockOptions = {}): Promise<RepoLock> {
    const opts = { ...DEFAULTS, ...definedOnly(options) };
    const info: LockInfo = {
      id: randomBytes(16).toString('hex'),
      host: os.hostname(),
      pid: process.pid,
      pidNs: PID_NS,
      time: new Date().toISOString(),
      refreshMs: opts.refreshMs,
      expires: '',
      exclusive: opts.exclusive,
      write: opts.write,
    };
    const lock = new RepoLock(storage, info, opts);
    const deadline = Date.now() + opts.waitMs;
    const blocking = async () =>
      (await activeLocks(storage, Date.now(), opts.onBreak)).filter(
        (l) => l.id !== info.id && blocks(l, opts),
      );
    for (;;) {
      let held = await blocking();
      if (held.length === 0) {
        // Write, then look again: of two racing takers at least one sees the other.
        await lock.stamp();
        held = await blocking();
        if (held.length === 0) break;
        await storage.delete(lock.key);
      }
      if (Date.now() >= deadline) {
        const b = held[0]!;
        throw new ConflictError(`repository is locked by ${b.host} pid ${b.pid} until ${b.expires}`);
      }
      await sleep(Math.min(opts.pollMs * (0.5 + Math.random()), Math.max(0, deadline - Date.now())));
    }
    lock.timer = setInterval(() => void lock.refresh().catch(() => undefined), opts.refreshMs);
    lock.timer.unref();
    return lock;
  }

  private get key(): string {
    return `${LOCKS_PREFIX}${this.info.id}`;
  }

  /** Writes the lock with fresh times. */
  private stamp(): Promise<void> {
    const now = Date.now();
    this.info.refreshed = new Date(now).toISOString();
    this.info.expires = new Date(now + this.opts.ttlMs).toISOString();
    return this.storage.put(this.key, Buffer.from(JSON.stringify(this.info)));
  }

  private refreshing: Promise<void> | undefined;

  async refresh(): Promise<void> {
    if (this.released) return;
    this.refreshing = this.stamp();
    await this.refreshing;
  }

  async release(): Promise<void> {
    this.released = true;
    if (this.timer) clearInterval(this.timer);
    // a refresh landing after the delete would bring the lock back
    await this.refreshing?.catch(() => undefined);
    await this.storage.delete(this.key);
  }
}
