// Two real processes against the same targets hold each target's limits together: requests per
// second, bytes per second and concurrency are counted in Redis, not per process.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { clearRedisPrefix, REDIS_URL } from '../helpers/service.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const dir = mkdtempSync(path.join(tmpdir(), 'wv-limit-'));
const redisPrefix = `wvtest-limit-${randomBytes(4).toString('hex')}`;

afterAll(async () => {
  await clearRedisPrefix(redisPrefix);
  rmSync(dir, { recursive: true, force: true });
});

interface ChildReport {
  starts: Record<'rate' | 'bytes', number[]>;
  intervals: [number, number][];
}

function runChild(startAt: number, forMs: number): Promise<ChildReport> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(ROOT, 'test/helpers/limit-child.ts'),
      REDIS_URL,
      `{${redisPrefix}}`,
      dir,
      String(startAt),
      String(forMs),
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) =>
    child.once('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out) as ChildReport) : reject(new Error(`child exited ${code}`)),
    ),
  );
}

/** The most intervals open at one instant. */
function maxOverlap(intervals: [number, number][]): number {
  const events = intervals.flatMap(([s, e]) => [
    [s, 1],
    [e, -1],
  ]);
  events.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let open = 0;
  let most = 0;
  for (const [, d] of events) most = Math.max(most, (open += d!));
  return most;
}

it('two worker processes share a target’s requests/s, MB/s and concurrency', async () => {
  const forMs = 2_500;
  const startAt = Date.now() + 6_000; // both children are up by then; they start together
  const [a, b] = await Promise.all([runChild(startAt, forMs), runChild(startAt, forMs)]);
  const within = (ts: number[]) => ts.filter((t) => t >= startAt && t <= startAt + forMs).length;
  const seconds = forMs / 1000;

  // 20 requests/s between them (each alone would do 20/s, 100 in all)
  const requests = within(a.starts.rate) + within(b.starts.rate);
  expect(requests).toBeLessThanOrEqual(20 * seconds + 3);
  expect(requests).toBeGreaterThanOrEqual(20 * seconds * 0.6);
  expect(Math.min(within(a.starts.rate), within(b.starts.rate))).toBeGreaterThan(5);

  // 0.5 MB/s in 50 kB puts: 10 puts/s between them
  const puts = within(a.starts.bytes) + within(b.starts.bytes);
  expect(puts).toBeLessThanOrEqual(10 * seconds + 3);
  expect(puts).toBeGreaterThanOrEqual(10 * seconds * 0.6);

  // 3 requests in flight at most, across both processes (6 callers each)
  expect(maxOverlap([...a.intervals, ...b.intervals])).toBeLessThanOrEqual(3);
  expect(maxOverlap([...a.intervals, ...b.intervals])).toBe(3);
  expect(Math.min(a.intervals.length, b.intervals.length)).toBeGreaterThan(5);
}, 30_000);
