/** A Redis server of the test's own, on a free port, that the test may kill and start again (the shared one must stay up). */
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './emulators.js';
import { exited } from './processes.js';

export interface OwnRedis {
  url: string;
  /** SIGKILL, like a crashed server: nothing is saved. */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty (nothing when it runs). */
  start(): Promise<void>;
}

async function answers(url: string): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

export async function startOwnRedis(): Promise<OwnRedis> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const own: OwnRedis = {
    url,
    async start() {
      // Already running: a second server could not bind the port, and the first would be lost.
      if (child) return;
      child = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        {
          stdio: 'ignore',
        },
      );
      const deadline = Date.now() + 10_000;
      while (!(await answers(url))) {
        if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not start`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async kill() {
      if (!child) return;
      const c = child;
      child = undefined;
      c.kill('SIGKILL');
      await exited(c);
    },
  };
  // A test run that ends before its afterAll must not leave the server behind.
  process.once('exit', () => child?.kill('SIGKILL'));
  await own.start();
  return own;
}
