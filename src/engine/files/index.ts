/** Files source: backs up a directory tree (or a bucket prefix) into the repository and restores it. */
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readlink, rm, symlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import pLimit from 'p-limit';
import picomatch from 'picomatch';
import { ValidationError } from '../../errors.js';
import type { Storage } from '../../storage/types.js';
import { classifyFiles, type ClassMembers } from '../classes.js';
import type { FileEntry } from '../tree.js';
import { isErased, PLATFORM_SCOPE, type ContentReader, type ContentWriter, type KeyScope } from '../api.js';

export interface ScopeRule {
  /** Glob over the '/'-separated path relative to the source root. */
  pattern: string;
  /** Scope template: `{1}`, `{2}`… are the pattern's wildcard captures, e.g. 'supplier:{1}'. */
  scope: string;
}

export interface BackupFilesOptions {
  dir: string;
  scopes?: ScopeRule[];
  /** The same source's entries in the parent snapshot: unchanged files reuse their refs unread. */
  parent?: FileEntry[] | undefined;
  /** Files read at once. */
  concurrency?: number;
  /** Scopes of the erasure ledger: their files are left out. */
  erased?: ReadonlySet<string> | undefined;
  /** Retention classes: a tenant's files matching a class's pattern go under its class scope. */
  classes?: readonly ClassMembers[] | undefined;
}

/** Formats that are already compressed: zstd would only burn CPU on them. */
const INCOMPRESSIBLE = new Set(
  'jpg jpeg heic heif png gif webp avif mp4 mov m4v mkv webm avi mp3 m4a aac ogg opus flac zip gz tgz bz2 xz zst 7z rar docx xlsx pptx pdf'.split(
    ' ',
  ),
);

export function compressHint(file: string): boolean {
  return !INCOMPRESSIBLE.has(path.extname(file).slice(1).toLowerCase());
}

/**
 * A source's entries without those of erased scopes, nor the directories only they filled (a
 * wedding's folder is named after it): what every restore of an older point takes.
 */
export function withoutErased(entries: FileEntry[], erased: ReadonlySet<string>): FileEntry[] {
  if (erased.size === 0) return entries;
  const gone = entries.filter((e) => e.ref && isErased(e.ref.scope, erased));
  if (gone.length === 0) return entries;
  const kept = entries.filter((e) => !e.ref || !isErased(e.ref.scope, erased));
  const under = (dir: string, e: FileEntry) => e.path.startsWith(`${dir}/`);
  return kept.filter(
    (e) =>
      e.type !== 'dir' ||
      !gone.some((g) => under(e.path, g)) ||
      kept.some((k) => k.type !== 'dir' && under(e.path, k)),
  );
}

/** Returns a function mapping a relative path to its key scope: the first matching rule wins. */
export function scopeMapper(rules: ScopeRule[] = []): (relPath: string) => KeyScope {
  const compiled = rules.map((r) => ({
    re: picomatch.makeRe(r.pattern, { capture: true, dot: true }),
    scope: r.scope,
  }));
  return (relPath) => {
    for (const { re, scope } of compiled) {
      const m = re.exec(relPath);
      if (m) return scope.replace(/\{(\d+)\}/g, (_, n: string) => m[Number(n)] ?? '');
    }
    return PLATFORM_SCOPE;
  };
}

async function* walk(root: string, rel = ''): AsyncGenerator<{ rel: string; abs: string }> {
  const abs = rel ? path.join(root, ...rel.split('/')) : root;
  const names = (await readdir(abs)).sort();
  for (const name of names) {
    const childRel = rel ? `${rel}/${name}` : name;
    yield { rel: childRel, abs: path.join(abs, name) };
    const st = await lstat(path.join(abs, name));
    if (st.isDirectory()) yield* walk(root, childRel);
  }
}

/** Files up to this size are read whole by an encoder thread (4 at a time, so memory stays bounded). */
const THREADED_FILE_LIMIT = 32 * 1024 * 1024;

/** Backs up a directory; returns its entries (the snapshot tree for this source), sorted by path. */
export async function backupFiles(writer: ContentWriter, opts: BackupFilesOptions): Promise<FileEntry[]> {
  const scopeOf = classifyFiles(scopeMapper(opts.scopes), opts.classes);
  const parent = new Map((opts.parent ?? []).map((e) => [e.path, e]));
  const limit = pLimit(opts.concurrency ?? 4);
  const jobs: Promise<FileEntry | undefined>[] = [];
  for await (const { rel, abs } of walk(opts.dir)) {
    jobs.push(
      limit(async () => {
        const st = await lstat(abs);
        const base = { path: rel, size: st.size, mtimeMs: st.mtimeMs, mode: st.mode & 0o7777 };
        if (st.isDirectory()) return { ...base, type: 'dir', size: 0 };
        if (st.isSymbolicLink()) return { ...base, type: 'symlink', target: await readlink(abs) };
        if (!st.isFile()) return undefined; // sockets, fifos, devices: not backup material
        const scope = scopeOf(rel);
        if (opts.erased && isErased(scope, opts.erased)) return undefined; // erased: never stored again
        const prev = parent.get(rel);
        if (
          prev?.ref &&
          prev.type === 'file' &&
          prev.size === st.size &&
          prev.mtimeMs === st.mtimeMs &&
          prev.ref.scope === scope
        ) {
          return { ...base, type: 'file', ref: prev.ref };
        }
        const hint = { compress: compressHint(rel), size: st.size };
        // photos and documents are read and encoded on the encoder threads; big media streams
        const ref =
          (st.size <= THREADED_FILE_LIMIT
            ? await writer.writeFile?.(scope, abs, THREADED_FILE_LIMIT, hint)
            : undefined) ??
          (await writer.write(scope, createReadStream(abs, { highWaterMark: 1 << 20 }), hint));
        // The file grew or shrank while being read: record what was stored, not what stat said.
        return { ...base, type: 'file', size: ref.size, ref };
      }),
    );
  }
  const entries = (await Promise.all(jobs)).filter((e): e is FileEntry => e !== undefined);
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Resolves an entry's path under root, refusing anything that would land outside it. */
export function safeJoin(root: string, rel: string): string {
  const parts = rel.split('/');
  if (
    rel.length === 0 ||
    rel.includes('\0') ||
    rel.includes('\\') ||
    path.isAbsolute(rel) ||
    parts.some((p) => p === '' || p === '.' || p === '..')
  ) {
    throw new ValidationError(`refusing to restore unsafe path "${rel}"`);
  }
  const abs = path.resolve(root, ...parts);
  const base = path.resolve(root);
  if (!abs.startsWith(base.endsWith(path.sep) ? base : base + path.sep))
    throw new ValidationError(`refusing to restore "${rel}" outside ${base}`);
  return abs;
}

export interface RestoreFilesOptions {
  targetDir: string;
  concurrency?: number;
}

/** Restores entries under targetDir byte for byte, with modes and mtimes; symlinks last so none is followed. */
export async function restoreFiles(
  reader: ContentReader,
  entries: FileEntry[],
  opts: RestoreFilesOptions,
): Promise<{ files: number; bytes: number }> {
  const root = path.resolve(opts.targetDir);
  const planned = entries.map((e) => ({ e, abs: safeJoin(root, e.path) }));
  await mkdir(root, { recursive: true });
  const made = new Set([root]);
  for (const { e, abs } of planned) {
    if (e.type !== 'dir') continue;
    await mkdir(abs, { recursive: true });
    made.add(abs);
  }
  const limit = pLimit(opts.concurrency ?? 4);
  let files = 0;
  let bytes = 0;
  await Promise.all(
    planned
      .filter(({ e }) => e.type === 'file')
      .map(({ e, abs }) =>
        limit(async () => {
          const ref = e.ref;
          if (!ref) throw new ValidationError(`file entry ${e.path} has no content reference`);
          const dir = path.dirname(abs);
          if (!made.has(dir)) {
            await mkdir(dir, { recursive: true });
            made.add(dir);
          }
          // The file is created exclusively: whatever is already there (a link above all) is
          // removed first, never written through.
          const attrs = { mode: e.mode, mtimeMs: e.mtimeMs };
          const onThread = async () => {
            try {
              return (await reader.writeFile?.(ref, abs, attrs)) ?? false;
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
            }
            await rm(abs, { force: true });
            return (await reader.writeFile?.(ref, abs, attrs)) ?? false;
          };
          if (!(await onThread())) {
            await rm(abs, { force: true });
            await pipeline(reader.read(ref), createWriteStream(abs, { flags: 'wx', mode: 0o600 }));
            await chmod(abs, e.mode);
            await utimes(abs, e.mtimeMs / 1000, e.mtimeMs / 1000);
          }
          files++;
          bytes += ref.size;
        }),
      ),
  );
  for (const { e, abs } of planned) {
    if (e.type !== 'symlink' || e.target === undefined) continue;
    await rm(abs, { force: true });
    await symlink(e.target, abs);
  }
  // Directory times last (writing files inside changes them), deepest first.
  const dirs = planned.filter(({ e }) => e.type === 'dir').sort((a, b) => b.abs.length - a.abs.length);
  for (const { e, abs } of dirs) {
    await chmod(abs, e.mode);
    await utimes(abs, e.mtimeMs / 1000, e.mtimeMs / 1000);
  }
  return { files, bytes };
}

export interface BackupBucketOptions {
  storage: Storage;
  prefix: string;
  scopes?: ScopeRule[];
  parent?: FileEntry[] | undefined;
  concurrency?: number;
  erased?: ReadonlySet<string> | undefined;
  classes?: readonly ClassMembers[] | undefined;
}

/** Backs up every object under a bucket prefix; unchanged objects (same size and etag or mtime) reuse their refs. */
export async function backupFilesFromStorage(
  writer: ContentWriter,
  opts: BackupBucketOptions,
): Promise<FileEntry[]> {
  const scopeOf = classifyFiles(scopeMapper(opts.scopes), opts.classes);
  const parent = new Map((opts.parent ?? []).map((e) => [e.path, e]));
  const limit = pLimit(opts.concurrency ?? 4);
  const jobs: Promise<FileEntry | undefined>[] = [];
  for await (const o of opts.storage.list(opts.prefix)) {
    const rel = o.key.slice(opts.prefix.length).replace(/^\/+/, '');
    if (!rel) continue;
    jobs.push(
      limit(async () => {
        const base = {
          path: rel,
          type: 'file' as const,
          size: o.size,
          mtimeMs: o.modified?.getTime() ?? 0,
          mode: 0o644,
          etag: o.etag,
        };
        const scope = scopeOf(rel);
        if (opts.erased && isErased(scope, opts.erased)) return undefined; // erased: never stored again
        const prev = parent.get(rel);
        // Stores with etags (S3, GCS, Azure) are compared by etag; others by modification time.
        const unchanged =
          prev?.ref !== undefined &&
          prev.size === o.size &&
          prev.ref.scope === scope &&
          (o.etag !== undefined ? prev.etag === o.etag : base.mtimeMs > 0 && prev.mtimeMs === base.mtimeMs);
        if (unchanged) return { ...base, ref: prev.ref };
        const ref = await writer.write(scope, await opts.storage.get(o.key), { compress: compressHint(rel) });
        return { ...base, size: ref.size, ref };
      }),
    );
  }
  const entries = (await Promise.all(jobs)).filter((e) => e !== undefined);
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
