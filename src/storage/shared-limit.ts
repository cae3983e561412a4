/**
 * A target's limits held in Redis, so every worker process on every machine shares them: a lease
 * semaphore for concurrency (a killed process's slots expire with their lease) and a reservation
 * pace (GCRA) each for requests and for bytes, timed by Redis's own clock. When Redis does not
 * answer within a moment the request goes ahead under this process's limits alone: a Redis outage
 * must not stall backups that are already running.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import {
  LimitedStorage,
  LocalSlots,
  localGate,
  type Gate,
  type LimitOptions,
  type Pace,
  type Slots,
} from './limit.js';
import type { Storage } from './types.js';

export interface SharedLimitOptions {
  redis: Redis;
  /** Key prefix (the queues' `{prefix}`), so limits live beside the queues. */
  prefix: string;
  /** A slot whose holder stopped renewing it is free after this long. */
  leaseMs?: number;
  /** How long a Redis call may take before this process goes ahead on its own limits. */
  redisTimeoutMs?: number;
  /** Told once per outage that the shared limits are not being applied. */
  onBypass?: (err: unknown) => void;
}

const NOW = `local t = redis.call('TIME') local now = t[1] * 1000 + t[2] / 1000`;

const ACQUIRE = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`;

const RENEW = `${NOW}
if redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[1]), ARGV[2]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1`;

// The start time is booked before the wait, so waiters in every process are served in turn.
const RESERVE = `${NOW}
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local after = tat + tonumber(ARGV[1]) * tonumber(ARGV[2])
redis.call('SET', KEYS[1], tostring(after), 'PX', math.ceil(after - now) + 1000)
return tostring(tat - now)`;

class Shared {
  private bypassing = false;

  constructor(private readonly opts: SharedLimitOptions) {}

  key(...parts: string[]): string {
    return [this.opts.prefix, 'limit', ...parts].join(':');
  }

  /** The script's answer, or undefined when Redis failed or was too slow (then: local limits only). */
  async call(script: string, keys: string[], args: (string | number)[]): Promise<string | undefined> {
    const timeout = sleep(this.opts.redisTimeoutMs ?? 2_000, 'timeout' as const, { ref: false });
    try {
      // a connection that is down would queue the call until it is back: go ahead at once
      if (this.opts.redis.status !== 'ready') throw new Error(`redis is ${this.opts.redis.status}`);
      const r = await Promise.race([this.opts.redis.eval(script, keys.length, ...keys, ...args), timeout]);
      if (r === 'timeout') throw new Error('redis did not answer in time');
      this.bypassing = false;
      return String(r);
    } catch (err) {
      if (!this.bypassing) this.opts.onBypass?.(err);
      this.bypassing = true;
      return undefined;
    }
  }

  get leaseMs(): number {
    return this.opts.leaseMs ?? 30_000;
  }
}

class RedisSlots implements Slots {
  constructor(
    private readonly shared: Shared,
    private readonly key: string,
    private readonly size: number,
  ) {}

  async acquire(): Promise<() => void> {
    const member = randomUUID();
    const lease = this.shared.leaseMs;
    for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
      const got = await this.shared.call(ACQUIRE, [this.key], [this.size, lease, member]);
      if (got === undefined) return () => undefined;
      if (got === '1') break;
      await sleep(wait + Math.random() * wait);
    }
    const renew = setInterval(() => {
      this.shared.call(RENEW, [this.key], [lease, member]).catch(() => undefined);
    }, lease / 3);
    renew.unref();
    return () => {
      clearInterval(renew);
      this.shared
        .call(`return redis.call('ZREM', KEYS[1], ARGV[1])`, [this.key], [member])
        .catch(() => undefined);
    };
  }
}

class RedisPace implements Pace {
  constructor(
    private readonly shared: Shared,
    private readonly key: string,
    private readonly msPerUnit: number,
  ) {}

  async reserve(cost: number): Promise<number> {
    const wait = await this.shared.call(RESERVE, [this.key], [cost, this.msPerUnit]);
    return wait === undefined ? 0 : Number(wait);
  }
}

/**
 * The shared gate: this process's own slots first (so its waiters queue here instead of polling
 * Redis), then the target's slots in Redis, then the shared paces.
 */
export function sharedGate(target: string, limits: LimitOptions, opts: SharedLimitOptions): Gate {
  const shared = new Shared(opts);
  return {
    slots: [
      new LocalSlots(limits.concurrency),
      new RedisSlots(shared, shared.key(target, 'slots'), limits.concurrency),
    ],
    requests: limits.ratePerSecond
      ? new RedisPace(shared, shared.key(target, 'requests'), 1000 / limits.ratePerSecond)
      : undefined,
    bytes: limits.mbPerSecond
      ? new RedisPace(shared, shared.key(target, 'bytes'), 1000 / (limits.mbPerSecond * 1e6))
      : undefined,
  };
}

export function withSharedLimit(storage: Storage, limits: LimitOptions, opts?: SharedLimitOptions): Storage {
  return new LimitedStorage(storage, opts ? sharedGate(storage.name, limits, opts) : localGate(limits));
}
