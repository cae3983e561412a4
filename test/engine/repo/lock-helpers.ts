/** Test helpers for locks: a PID that no process has, and lock objects as another holder left them. */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import os from 'node:os';
import { LOCKS_PREFIX, type LockInfo } from '../../../src/engine/repo/lock.js';
import type { Storage } from '../../../src/storage/types.js';

/** The PID of a process that has exited (and been reaped) on this host. */
export async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  const pid = child.pid!;
  await new Promise((resolve) => child.once('exit', resolve));
  return pid;
}

/** Writes a write lock as a holder with this PID on this host left it; returns its info. */
export async function writeLockOf(
  storage: Storage,
  pid: number,
  over: Partial<LockInfo> = {},
): Promise<LockInfo> {
  const now = Date.now();
  const info: LockInfo = {
    id: randomBytes(16).toString('hex'),
    host: os.hostname(),
    pid,
    pidNs: readlinkSync('/proc/self/ns/pid'),
    time: new Date(now).toISOString(),
    refreshed: new Date(now).toISOString(),
    refreshMs: 5 * 60_000,
    expires: new Date(now + 30 * 60_000).toISOString(),
    exclusive: false,
    write: true,
    ...over,
  };
  await storage.put(`${LOCKS_PREFIX}${info.id}`, Buffer.from(JSON.stringify(info)));
  return info;
}
