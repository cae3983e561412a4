/** Test helpers: a repository on a fresh temp directory, and a deterministic byte generator. */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach } from 'vitest';
import { Repository } from '../../../src/engine/repo/repository.js';
import { readAll } from '../../../src/storage/types.js';
import { LocalStorage } from '../../../src/storage/local.js';
import type { ContentRef } from '../../../src/engine/api.js';

/** Small chunk sizes so tests exercise many chunks and packs with little data. */
export const SMALL_CHUNKER = { minSize: 2 * 1024, avgSize: 8 * 1024, maxSize: 32 * 1024 };

export interface TestRepo {
  dir: string;
  storage: LocalStorage;
  masterKey: Buffer;
  repo: Repository;
  cleanup(): Promise<void>;
}

export async function tempDir(prefix = 'wv-repo-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function newRepo(opts: { small?: boolean } = {}): Promise<TestRepo> {
  const dir = await tempDir();
  const storage = new LocalStorage('test', dir);
  const masterKey = randomBytes(32);
  const repo = await Repository.init(
    storage,
    masterKey,
    opts.small === false ? {} : { chunker: SMALL_CHUNKER },
  );
  return { dir, storage, masterKey, repo, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A newRepo() for each call, each removed after its test. */
export function reposPerTest(): () => Promise<TestRepo> {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });
  return async () => {
    const t = await newRepo();
    cleanups.push(t.cleanup);
    return t;
  };
}

/** A tempDir() maker whose directories are removed after each test. */
export function tempDirsPerTest(): (prefix: string) => Promise<string> {
  const made: string[] = [];
  afterEach(async () => {
    for (const d of made.splice(0)) await rm(d, { recursive: true, force: true });
  });
  return async (prefix) => {
    const d = await tempDir(prefix);
    made.push(d);
    return d;
  };
}

/** Deterministic pseudo-random bytes (xorshift), so tests can make "the same data" twice cheaply. */
export function pseudoRandom(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export const streamOf = (buf: Buffer, piece = 7919): Readable => {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += piece) parts.push(buf.subarray(i, i + piece));
  return Readable.from(parts);
};

export async function readBack(repo: Repository, ref: ContentRef): Promise<Buffer> {
  return readAll(repo.reader().read(ref));
}

export { randomBytes };
