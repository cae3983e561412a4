// Repository locks on a real local store: dead or stale holders are broken, live ones block, writers take turns, leftovers are swept.
import { spawn } from 'node:child_process';
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConflictError } from '../../../src/errors.js';
import { activeLocks, RepoLock, type LockInfo } from '../../../src/engine/repo/lock.js';
import { TEMP_MAX_AGE_MS } from '../../../src/storage/local.js';
import { reposPerTest, streamOf } from './helpers.js';
import { deadPid, writeLockOf } from './lock-helpers.js';

const lockKeys = async (t: { storage: { list(p: string): AsyncIterable<{ key: string }> } }) => {
  const keys: string[] = [];
  for await (const o of t.storage.list('locks/')) keys.push(o.key);
  return keys;
};

describe('repository locks', () => {
  const newRepo = reposPerTest();

  it('a lock left by a dead process on this host blocks nothing, is removed and reported', async () => {
    const t = await newRepo();
    const left = await writeLockOf(t.storage, await deadPid(), { exclusive: true });
    const broken: [LockInfo, string][] = [];
    const lock = await RepoLock.acquire(t.storage, {
      exclusive: true,
      onBreak: (l, why) => broken.push([l, why]),
    });
    expect(broken).toHaveLength(1);
    expect(broken[0]![0].id).toBe(left.id);
    expect(broken[0]![1]).toMatch(/process \d+ is gone/);
    expect(await lockKeys(t)).toEqual([`locks/${lock.info.id}`]);
    await lock.release();
  });

  it('a lock not refreshed for more than twice its interval is broken, though unexpired', async () => {
    const t = await newRepo();
    const longAgo = new Date(Date.now() - 11 * 60_000).toISOString();
    // our own PID: alive, so only the missed refreshes can break it
    await writeLockOf(t.storage, process.pid, { refreshed: longAgo, refreshMs: 5 * 60_000 });
    const broken: string[] = [];
    const lock = await RepoLock.acquire(t.storage, { write: true, onBreak: (_l, why) => broken.push(why) });
    expect(broken).toEqual([expect.stringMatching(/not refreshed since/)]);
    await lock.release();
  });

  it('a live holder still blocks, and so does a dead PID on another host', async () => {
    const t = await newRepo();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      const live = await writeLockOf(t.storage, child.pid!);
      await expect(RepoLock.acquire(t.storage, { write: true })).rejects.toThrow(ConflictError);
      await t.storage.delete(`locks/${live.id}`);
      await writeLockOf(t.storage, await deadPid(), { host: `not-${os.hostname()}` });
      await expect(RepoLock.acquire(t.storage, { exclusive: true })).rejects.toThrow(ConflictError);
      expect(await activeLocks(t.storage)).toHaveLength(1);
    } finally {
      child.kill();
    }
  });

  it('a writer waits for another write lock to go, then proceeds; shared locks do not wait for it', async () => {
    const t = await newRepo();
    const first = await RepoLock.acquire(t.storage, { write: true });
    const shared = await RepoLock.acquire(t.storage);
    let second: RepoLock | undefined;
    const waiting = RepoLock.acquire(t.storage, { write: true, waitMs: 60_000, pollMs: 50 }).then(
      (l) => (second = l),
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(second).toBeUndefined();
    await first.release();
    await waiting;
    expect(second).toBeDefined();
    await Promise.all([second!.release(), shared.release()]);
  });

  it('the next writer removes temp files older than the bound and keeps younger ones', async () => {
    const t = await newRepo();
    const dir = path.join(t.dir, 'data', 'ab');
    await mkdir(dir, { recursive: true });
    const old = path.join(dir, 'abcd.tmp-killed');
    const young = path.join(dir, 'abce.tmp-in-flight');
    await writeFile(old, 'left by a killed writer');
    await writeFile(young, 'being written');
    const then = new Date(Date.now() - TEMP_MAX_AGE_MS - 60_000);
    await utimes(old, then, then);
    const w = t.repo.writer();
    await w.write('platform', streamOf(Buffer.from('next backup')));
    await w.flush();
    await w.close();
    expect((await readdir(dir)).sort()).toEqual(['abce.tmp-in-flight']);
  });
});
