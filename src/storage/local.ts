/** Local-disk store: objects are files under a root directory, written via a temp file and rename. */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import {
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  statfs,
  unlink,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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

function mapFsError(err: unknown, key: string, target: string): Error {
  if (err instanceof WedvaultError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new NotFoundError(`${target}: object ${key} not found`, { cause: err });
  if (code === 'EMFILE' || code === 'EAGAIN' || code === 'EBUSY') {
    return new TransientError(`${target}: ${code} on ${key}`, { cause: err });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new StorageAuthError(`${target}: ${code} on ${key}`, { cause: err });
  }
  return new FatalError(`${target}: ${code ?? 'error'} on ${key}: ${(err as Error).message}`, { cause: err });
}

/**
 * Creates `file` (it must not exist) holding the parts back to back, in one vectored write (libuv
 * goes on where the kernel stops short); a file left unfinished is removed.
 */
async function writeParts(file: string, parts: readonly Buffer[]): Promise<void> {
  if (parts.length === 1) return writeFile(file, parts[0]!, { flag: 'wx' });
  const handle = await open(file, 'wx');
  try {
    const size = parts.reduce((n, p) => n + p.length, 0);
    const { bytesWritten } = await handle.writev(parts as Buffer[]);
    if (bytesWritten !== size)
      throw new FatalError(`short write to ${file}: ${bytesWritten} of ${size} bytes`);
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

export class LocalStorage implements Storage {
  constructor(
    readonly name: string,
    private readonly root: string,
  ) {}

  /** Directories known to exist: a backup writes thousands of objects into a few hundred of them. */
  private readonly dirs = new Set<string>();

  private async ensureDir(dir: string): Promise<void> {
    if (this.dirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    if (this.dirs.size > 100_000) this.dirs.clear();
    this.dirs.add(dir);
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
    await this.ensureDir(path.dirname(dest));
    const tmp = `${dest}.tmp-${randomUUID()}`;
    const md5 = createHash('md5');
    if (Buffer.isBuffer(body) || isParts(body)) {
      const parts = Buffer.isBuffer(body) ? [body] : body;
      // the directory may have been removed behind the cache's back: make it again, once
      try {
        await writeParts(tmp, parts);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw mapFsError(err, key, this.name);
        this.dirs.delete(path.dirname(dest));
        await this.ensureDir(path.dirname(dest));
        await writeParts(tmp, parts);
      }
      if (opts.md5 && !md5Of(parts).equals(opts.md5)) {
        await rm(tmp, { force: true });
        throw new CorruptionError(`${this.name}: MD5 mismatch writing ${key}`, { object: key });
      }
      await rename(tmp, dest);
      return;
    }
    const source = body;
    try {
      await pipeline(
        source,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const c of chunks) {
            // Hashing costs the main thread; only pay it when the caller gave a digest to check.
            if (opts.md5) md5.update(c);
            yield c;
          }
        },
        createWriteStream(tmp, { flags: 'wx' }),
      );
      if (opts.md5 && !md5.digest().equals(opts.md5)) {
        throw new CorruptionError(`${this.name}: MD5 mismatch writing ${key}`, { object: key });
      }
      await rename(tmp, dest);
    } catch (err) {
      await rm(tmp, { force: true });
      throw mapFsError(err, key, this.name);
    }
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
      throw mapFsError(err, key, this.name);
    }
    if (range?.length === 0) return Readable.from([]);
    // a whole pack in one read into one buffer: a stream of 64 KiB pieces costs a copy and the GC
    if (!range && size > 0 && size <= WHOLE_READ_MAX) {
      try {
        return Readable.from([await readFile(file)]);
      } catch (err) {
        throw mapFsError(err, key, this.name);
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
      throw mapFsError(err, key, this.name);
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
      throw mapFsError(err, key, this.name);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk only the directories that can hold keys with this prefix.
    const slash = prefix.lastIndexOf('/');
    const baseDir = slash >= 0 ? prefix.slice(0, slash) : '';
    yield* this.walk(baseDir, prefix);
  }

  private async *walk(dir: string, prefix: string): AsyncIterable<ObjectInfo> {
    let entries;
    try {
      entries = await readdir(dir ? path.join(this.root, ...dir.split('/')) : this.root, {
        withFileTypes: true,
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw mapFsError(err, dir, this.name);
    }
    for (const e of entries) {
      const key = dir ? `${dir}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(key + '/')) yield* this.walk(key, prefix);
      } else if (e.isFile() && key.startsWith(prefix) && !e.name.includes('.tmp-')) {
        let s;
        try {
          s = await stat(path.join(this.root, ...key.split('/')));
        } catch (err) {
          // Deleted between readdir and stat (a prune running beside the listing): not listed.
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw mapFsError(err, key, this.name);
        }
        yield { key, size: s.size, modified: s.mtime };
      }
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.file(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw mapFsError(err, key, this.name);
    }
  }

  async usage(): Promise<{ usedBytes?: number; freeBytes?: number }> {
    await mkdir(this.root, { recursive: true });
    const s = await statfs(this.root);
    return { freeBytes: s.bavail * s.bsize };
  }
}
