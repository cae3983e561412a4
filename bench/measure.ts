/** Runs a command under /usr/bin/time and reports wall time, CPU time and peak RSS. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface Measured {
  wall_s: number;
  cpu_s: number;
  peak_rss_mb: number;
  stdout: string;
}

export async function measure(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Measured> {
  const dir = mkdtempSync(path.join(tmpdir(), 'wv-bench-'));
  const out = path.join(dir, 'time');
  const started = process.hrtime.bigint();
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '%e %U %S %M', '-o', out, cmd, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d: Buffer) => stdout.push(d));
    child.stderr.on('data', (d: Buffer) => stderr.push(d));
    child.on('error', reject);
    child.on('exit', resolve);
  });
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  if (code !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} exited ${code}: ${Buffer.concat(stderr).toString().slice(-2000)}`,
    );
  }
  const [, user, sys, rssKb] = readFileSync(out, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  rmSync(dir, { recursive: true, force: true });
  return {
    wall_s: Math.round(wall * 100) / 100,
    cpu_s: Math.round((user! + sys!) * 100) / 100,
    peak_rss_mb: Math.round(rssKb! / 1024),
    stdout: Buffer.concat(stdout).toString(),
  };
}

export async function sh(script: string, env: Record<string, string> = {}): Promise<Measured> {
  return measure('bash', ['-c', script], env);
}
