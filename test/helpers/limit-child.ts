/**
 * A process that hammers three local targets through the shared limits for a while and prints
 * what it did as one JSON line: the request starts per target and, for `slots`, each inner call's
 * [start, end]. Run twice at once by test/storage/shared-limit.test.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { targetSchema } from '../../src/config/schema.js';
import { createStorage } from '../../src/storage/factory.js';
import { LocalStorage } from '../../src/storage/local.js';
import { withSharedLimit } from '../../src/storage/shared-limit.js';
import type { Storage } from '../../src/storage/types.js';

const [redisUrl, prefix, dir, startAtText, forMsText] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
];
const startAt = Number(startAtText);
const until = startAt + Number(forMsText);
const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
const shared = { redis, prefix };
const target = (name: string, extra: object) =>
  createStorage(
    targetSchema.parse({ type: 'local', name, path: `${dir}/${name}`, ...extra }),
    {},
    { shared, retry: false },
  );

const rate = target('rate', { rateLimit: 20, concurrency: 64 });
const bytes = target('bytes', { mbPerSecond: 0.5, concurrency: 64 });
const intervals: [number, number][] = [];
// the inner store holds each request 40 ms and notes when, so overlaps across processes show
const local = new LocalStorage('slots', `${dir}/slots`);
const held: Storage = Object.assign(Object.create(local) as Storage, {
  async stat(key: string) {
    const start = Date.now();
    await sleep(40);
    intervals.push([start, Date.now()]);
    return { key, size: 0 };
  },
});
const slots = withSharedLimit(held, { concurrency: 3 }, shared);

const starts: Record<string, number[]> = { rate: [], bytes: [] };
async function loop(name: string, op: () => Promise<unknown>): Promise<void> {
  while (Date.now() < until) {
    await op();
    starts[name]!.push(Date.now());
  }
}
const body = Buffer.alloc(50_000, 7);
await sleep(Math.max(0, startAt - Date.now()));
await Promise.all([
  ...Array.from({ length: 4 }, (_, i) =>
    loop('rate', () => rate.put(`r${process.pid}-${i}`, Buffer.from('x'))),
  ),
  ...Array.from({ length: 4 }, (_, i) => loop('bytes', () => bytes.put(`b${process.pid}-${i}`, body))),
  ...Array.from({ length: 6 }, () =>
    (async () => {
      while (Date.now() < until) await slots.stat('k');
    })(),
  ),
]);
process.stdout.write(JSON.stringify({ starts, intervals }) + '\n');
redis.disconnect();
