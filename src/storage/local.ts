/** Local-disk store: objects are files under a root directory, written via a temp file and rename. */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, statfs, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  CorruptionError,
  FatalError,
  NotFoundError,
  StorageAuthError,
  TransientError,
  ValidationError,
  WedvaultError,
} from '../errors.js';
import {
  isParts,
  type Body,
  type ByteRange,
  type ObjectInfo,
  type PutOptions,
  type Storage,
} from './types.js';

/** Whole objects up to this size are read with one call (packs are 12 MiB). */
const WHOLE_READ_MAX = 64 * 1024 * 1024;
const DIRECT_READ_MAX = 8 * 1024 * 1024;

export function assertSafeKey(key: string): void {
  if (
    key.length === 0 ||
    key.length > 1024 ||
    key.startsWith('/') ||
    key.split('/').some((p) => p === '..' || p === '.' || p === '') ||
    key.includes('\0') ||
    key.includes('\\')
  ) {
    throw new ValidationError(`invalid object key "${key}"`);
  }
}

/**
 * Error codes a later try can get past: a busy or exhausted descriptor table, an interrupted or
 * timed-out call, and a network filesystem's hiccup (NFS answers a replaced directory with ESTALE
 * and a server blip with EIO). A disk that keeps failing with EIO fails once the retries run out.
 */
const TRANSIENT_CODES = new Set([
  'EAGAIN',
  'EBUSY',
  'EINTR',
  'EIO',
  'EMFILE',
  'ENFILE',
  'ESTALE',
  'ETIMEDOUT',
  'ECONNRESET',
  'EHOSTDOWN',
]);

const codeOf = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code;

/**
 * Maps a filesystem error. ENOENT means a missing object only when reading: a write meets it when
 * its directory vanished (replaced by an operator, a remount), which a retry writes through.
 */
export function mapFsError(err: unknown, key: string, target: string, op: 'read' | 'write'): Error {
  if (err instanceof WedvaultError) return err;
  const code = codeOf(err);
  if (code === 'ENOENT' && op === 'read') {
    return new NotFoundError(`${target}: object ${key} not found`, { cause: err });
  }
  if (code === 'ENOENT' || (code && TRANSIENT_CODES.has(code))) {
    return new TransientError(`${target}: ${code} writing ${key}`, { cause: err });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new StorageAuthError(`${target}: ${code} on ${key}`, { cause: err });
  }
  return new FatalError(`${target}: ${code ?? 'error'} on ${key}: ${(err as Error).message}`, { cause: err });
}

/**
 * Creates `file` (it must not exist) holding the parts back to back, in one vectored write (libuv
 * goes on where the kernel stops short), synced to disk when `durable`; a file left unfinished is
 * removed.
 */
async function writeParts(file: string, parts: readonly Buffer[], durable: boolean): Promise<void> {
  const handle = await open(file, 'wx');
  try {
    if (parts.length === 1) await handle.writeFile(parts[0]!);
    else {
      const size = parts.reduce((n, p) => n + p.length, 0);
      const { bytesWritten } = await handle.writev(parts as Buffer[]);
      if (bytesWritten !== size)
        throw new FatalError(`short write to ${file}: ${bytesWritten} of ${size} bytes`);
    }
    if (durable) await handle.sync();
    await handle.close();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await rm(file, { force: true });
    throw err;
  }
}

function md5Of(parts: readonly Buffer[]): Buffer {
  const md5 = createHash('md5');
  for (const p of parts) md5.update(p);
  return md5.digest();
}

export interface LocalStorageOptions {
  /**
   * Sync each object's file before its rename, and (at sync()) the directories renames changed, so
   * that what a snapshot names survives a power loss. Default true; benches measure it off.
   */
  durable?: boolean;
}

/** Temp files of writers killed mid-put are removed by sweepTemp() once this old. */
export const TEMP_MAX_AGE_MS = 60 * 60_000;
/** Directories synced at once by sync(). */
const SYNC_PARALLEL = 16;

export class LocalStorage implements Storage {
  private readonly durable: boolean;

  constructor(
    readonly name: string,
    private readonly root: string,
    opts: LocalStorageOptions = {},
  ) {
    this.durable = opts.durable ?? true;
  }

  /** Directories known to exist: a backup writes thousands of objects into a few hundred of them. */
  private readonly dirs = new Set<string>();
  /** Directories whose entries changed since the last sync(): one fsync each covers many renames. */
  private dirty = new Set<string>();

  private async ensureDir(dir: string): Promise<void> {
    if (this.dirs.has(dir)) return;
    const first = await mkdir(dir, { recursive: true });
    // a new directory is an entry in its parent: the parent of each one made needs a sync too
    if (first !== undefined && this.durable) {
      for (let d = dir; ; d = path.dirname(d)) {
        this.dirty.add(path.dirname(d));
        if (d === first || d === path.dirname(d)) break;
      }
    }
    if (this.dirs.size > 100_000) this.dirs.clear();
    this.dirs.add(dir);
  }

  /**
   * Runs a write step in `dir`; when the directory turns out missing (removed or replaced behind
   * the cache's back) it is made again and the step runs once more.
   */
  private async inDir<T>(dir: string, step: () => Promise<T>): Promise<T> {
    await this.ensureDir(dir);
    try {
      return await step();
    } catch (err) {
      if (codeOf(err) !== 'ENOENT') throw err;
      this.dirs.delete(dir);
      await this.ensureDir(dir);
      return step();
    }
  }

  private file(key: string): string {
    assertSafeKey(key);
    return path.join(this.root, ...key.split('/'));
  }

  localFile(key: string): string {
    return this.file(key);
  }

  async put(key: string, body: Body, opts: PutOptions = {}): Promise<void> {
    const dest = this.file(key);
    const dir = path.dirname(dest);
    const tmpName = () => `${dest}.tmp-${randomUUID()}`;
    try {
      if (Buffer.isBuffer(body) || isParts(body)) {
        const parts = Buffer.isBuffer(body) ? [body] : body;
        if (opts.md5 && !md5Of(parts).equals(opts.md5)) {
          throw new CorruptionError(`${this.name}: MD5 mismatch writing ${key}`, { object: key });
        }
        // the bytes are at hand: a directory that vanishes before the rename is written again
        await this.inDir(dir, async () => {
          const tmp = tmpName();
          await writeParts(tmp, parts, this.durable);
          await rename(tmp, dest).catch(async (err: unknown) => {
            await rm(tmp, { force: true });
            throw err;
          });
        });
      } else {
        await this.putStream(key, body, tmpName(), dest, opts);
      }
    } catch (err) {
      throw mapFsError(err, key, this.name, 'write');
    }
    if (this.durable) this.dirty.add(dir);
  }

  /** A stream is read once: its temp file is opened before the first byte is taken from it. */
  private async putStream(key: string, source: Readable, tmp: string, dest: string, opts: PutOptions) {
    const handle = await this.inDir(path.dirname(dest), () => open(tmp, 'wx')).catch((err: unknown) => {
      source.destroy();
      throw err;
    });
    const md5 = createHash('md5');
    try {
      for await (const chunk of source) {
        const c = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
        // Hashing costs the main thread; only pay it when the caller gave a digest to check.
        if (opts.md5) md5.update(c);
        for (let at = 0; at < c.length;) at += (await handle.write(c, at)).bytesWritten;
      }
      if (opts.md5 && !md5.digest().equals(opts.md5)) {
        throw new CorruptionError(`${this.name}: MD5 mismatch writing ${key}`, { object: key });
      }
      if (this.durable) await handle.sync();
      await handle.close();
      // ENOENT here: the directory went with the temp file, and the stream is spent (transient)
      await rename(tmp, dest);
    } catch (err) {
      await handle.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /**
   * Makes every put so far survive a power loss: each object's file was synced before its rename;
   * this syncs the directories those renames (and new directories) changed, once each.
   */
  async sync(): Promise<void> {
    const dirs = [...this.dirty];
    this.dirty = new Set();
    try {
      for (let i = 0; i < dirs.length; i += SYNC_PARALLEL) {
        await Promise.all(dirs.slice(i, i + SYNC_PARALLEL).map(syncDir));
      }
    } catch (err) {
      for (const d of dirs) this.dirty.add(d);
      throw mapFsError(err, 'a directory', this.name, 'write');
    }
  }

  /** Removes temp files that writers killed mid-put left behind, once older than `maxAgeMs`. */
  async sweepTemp(maxAgeMs = TEMP_MAX_AGE_MS): Promise<number> {
    const before = Date.now() - maxAgeMs;
    let removed = 0;
    for await (const o of this.walk('', '', true)) {
      if (o.modified!.getTime() >= before) continue; // walk() always stats
      const gone = await unlink(path.join(this.root, ...o.key.split('/'))).then(
        () => true,
        () => false,
      );
      if (gone) removed++;
    }
    return removed;
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const file = this.file(key);
    if (range?.length !== undefined && range.length > 0 && range.length <= DIRECT_READ_MAX) {
      return Readable.from([await this.readRange(file, key, range.offset, range.length)]);
    }
    let size: number;
    try {
      const info = await stat(file);
      size = info.size;
      if (range && range.offset > info.size) {
        throw new ValidationError(`${this.name}: range starts past the end of ${key}`);
      }
    } catch (err) {
      throw mapFsError(err, key, this.name, 'read');
    }
    if (range?.length === 0) return Readable.from([]);
    // a whole pack in one read into one buffer: a stream of 64 KiB pieces costs a copy and the GC
    if (!range && size > 0 && size <= WHOLE_READ_MAX) {
      try {
        return Readable.from([await readFile(file)]);
      } catch (err) {
        throw mapFsError(err, key, this.name, 'read');
      }
    }
    const end = range?.length !== undefined ? range.offset + range.length - 1 : undefined;
    return createReadStream(file, { start: range?.offset ?? 0, end });
  }

  /** One open, one read: a restore reads hundreds of thousands of small blobs this way. */
  private async readRange(file: string, key: string, offset: number, length: number): Promise<Buffer> {
    let fh;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      throw mapFsError(err, key, this.name, 'read');
    }
    try {
      const buf = Buffer.allocUnsafe(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      if (bytesRead === 0) throw new ValidationError(`${this.name}: range starts past the end of ${key}`);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }

  async stat(key: string): Promise<ObjectInfo> {
    try {
      const s = await stat(this.file(key));
      return { key, size: s.size, modified: s.mtime };
    } catch (err) {
      throw mapFsError(err, key, this.name, 'read');
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk only the directories that can hold keys with this prefix.
    const slash = prefix.lastIndexOf('/');
    const baseDir = slash >= 0 ? prefix.slice(0, slash) : '';
    yield* this.walk(baseDir, prefix);
  }

  /** Files under `dir` whose keys start with `prefix`: objects, or with `temp` only writers' temp files. */
  private async *walk(dir: string, prefix: string, temp = false): AsyncIterable<ObjectInfo> {
    let entries;
    try {
      entries = await readdir(dir ? path.join(this.root, ...dir.split('/')) : this.root, {
        withFileTypes: true,
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw mapFsError(err, dir, this.name, 'read');
    }
    for (const e of entries) {
      const key = dir ? `${dir}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(key + '/')) yield* this.walk(key, prefix, temp);
      } else if (e.isFile() && key.startsWith(prefix) && e.name.includes('.tmp-') === temp) {
        let s;
        try {
          s = await stat(path.join(this.root, ...key.split('/')));
        } catch (err) {
          // Deleted between readdir and stat (a prune running beside the listing): not listed.
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw mapFsError(err, key, this.name, 'read');
        }
        yield { key, size: s.size, modified: s.mtime };
      }
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.file(key));
    } catch (err) {
      if (codeOf(err) !== 'ENOENT') throw mapFsError(err, key, this.name, 'write');
    }
  }

  async usage(): Promise<{ usedBytes?: number; freeBytes?: number }> {
    await mkdir(this.root, { recursive: true });
    const s = await statfs(this.root);
    return { freeBytes: s.bavail * s.bsize };
  }
}

/** fsync of a directory: the renames into it (and entries made in it) reach the disk. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
