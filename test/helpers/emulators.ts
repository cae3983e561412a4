/** Starts real S3 (s3rver), Azure Blob (Azurite) and GCS (firebase-tools) servers on free loopback ports for tests. */
import { BlobServiceClient } from '@azure/storage-blob';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { targetSchema, type TargetConfig } from '../../src/config/schema.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const MODULES = path.join(ROOT, 'node_modules');

export interface Emulator {
  /** A target config for the server (credentials by env name, values in env). */
  target: TargetConfig;
  /** Env variables the target config names. */
  env: Record<string, string>;
  endpoint: string;
  pid: number;
  /** SIGSTOP: the server keeps its sockets but stops answering. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) {
    try {
      if (c.pid) process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function waitForPort(
  port: number,
  child: ChildProcess,
  output: string[],
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`emulator exited (${child.exitCode}): ${output.join('')}`);
    if (await portAnswers(port)) return;
    await sleep(100);
  }
  throw new Error(`emulator did not listen on ${port} within ${timeoutMs} ms: ${output.join('')}`);
}

function launch(
  script: string,
  args: string[],
  env: Record<string, string> = {},
): ChildProcess & { output: string[] } {
  const child = spawn(process.execPath, [script, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as ChildProcess & { output: string[] };
  child.output = [];
  const keep = (d: Buffer) => {
    child.output.push(d.toString());
    if (child.output.length > 50) child.output.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  children.add(child);
  return child;
}

function controls(
  child: ChildProcess,
  cleanup: () => Promise<void>,
): Pick<Emulator, 'pid' | 'pause' | 'resume' | 'stop'> {
  const pid = child.pid!;
  const signal = (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) process.kill(pid, sig);
  };
  return {
    pid,
    pause: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        signal('SIGCONT');
        signal('SIGTERM');
        const timer = setTimeout(() => signal('SIGKILL'), 3_000);
        await exited;
        clearTimeout(timer);
      }
      children.delete(child);
      await cleanup();
    },
  };
}

export async function startS3(
  opts: { bucket?: string; prefix?: string; name?: string } = {},
): Promise<Emulator> {
  const bucket = opts.bucket ?? 'wedvault-test';
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'wv-s3rver-'));
  // Without the legacy provider, s3rver answers 500 to every truncated ListObjectsV2 page.
  const child = launch(
    path.join(MODULES, 's3rver', 'bin', 's3rver.js'),
    ['-d', dir, '-a', '127.0.0.1', '-p', String(port), '--silent', '--configure-bucket', bucket],
    { NODE_OPTIONS: '--openssl-legacy-provider' },
  );
  await waitForPort(port, child, child.output);
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    target: targetSchema.parse({
      type: 's3',
      name: opts.name ?? 's3-test',
      bucket,
      prefix: opts.prefix ?? '',
      endpoint,
      forcePathStyle: true,
      region: 'us-east-1',
      accessKeyIdEnv: 'WV_TEST_S3_ACCESS_KEY_ID',
      secretAccessKeyEnv: 'WV_TEST_S3_SECRET_ACCESS_KEY',
      labels: { media: 'object', location: 'emulator-s3', offsite: true },
    }),
    env: { WV_TEST_S3_ACCESS_KEY_ID: 'S3RVER', WV_TEST_S3_SECRET_ACCESS_KEY: 'S3RVER' },
    ...controls(child, () => rm(dir, { recursive: true, force: true })),
  };
}

const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export async function startAzurite(
  opts: { container?: string; prefix?: string; name?: string } = {},
): Promise<Emulator> {
  const container = opts.container ?? 'wedvault-test';
  const port = await freePort();
  const child = launch(path.join(MODULES, 'azurite', 'dist', 'src', 'blob', 'main.js'), [
    '--blobHost',
    '127.0.0.1',
    '--blobPort',
    String(port),
    '--inMemoryPersistence',
    '--skipApiVersionCheck',
    '--disableTelemetry',
    '--silent',
  ]);
  await waitForPort(port, child, child.output);
  const endpoint = `http://127.0.0.1:${port}/devstoreaccount1`;
  const connectionString = `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${AZURITE_KEY};BlobEndpoint=${endpoint};`;
  // Providers check containers but never create them; the test setup does, like an operator would.
  await BlobServiceClient.fromConnectionString(connectionString)
    .getContainerClient(container)
    .createIfNotExists();
  return {
    endpoint,
    target: targetSchema.parse({
      type: 'azure',
      name: opts.name ?? 'azure-test',
      container,
      prefix: opts.prefix ?? '',
      connectionStringEnv: 'WV_TEST_AZURE_CONNECTION_STRING',
      labels: { media: 'object', location: 'emulator-azure', offsite: true },
    }),
    env: { WV_TEST_AZURE_CONNECTION_STRING: connectionString },
    ...controls(child, async () => {}),
  };
}

/** firebase-tools is large and may still be installing when tests start; wait for it rather than fail. */
async function waitForFirebaseTools(timeoutMs = 300_000): Promise<void> {
  const marker = path.join(MODULES, 'firebase-tools', 'lib', 'emulator', 'storage', 'index.js');
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(marker)) {
    if (Date.now() > deadline)
      throw new Error('firebase-tools is not installed (node_modules/firebase-tools)');
    await sleep(2_000);
  }
}

export async function startGcs(
  opts: { bucket?: string; prefix?: string; name?: string } = {},
): Promise<Emulator> {
  await waitForFirebaseTools();
  const bucket = opts.bucket ?? 'wedvault-test';
  const port = await freePort();
  // The emulator keeps upload temp files under $TMPDIR/firebase and deletes them all on stop:
  // a private TMPDIR keeps parallel emulators from deleting each other's files.
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'wv-gcs-'));
  const child = launch(
    path.join(ROOT, 'test', 'helpers', 'gcs-emulator-launcher.mjs'),
    [String(port), 'demo-test'],
    {
      TMPDIR: tmp,
    },
  );
  await waitForPort(port, child, child.output);
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    target: targetSchema.parse({
      type: 'gcs',
      name: opts.name ?? 'gcs-test',
      bucket,
      prefix: opts.prefix ?? '',
      projectId: 'demo-test',
      apiEndpoint: endpoint,
      labels: { media: 'object', location: 'emulator-gcs', offsite: true },
    }),
    env: {},
    ...controls(child, () => rm(tmp, { recursive: true, force: true })),
  };
}
