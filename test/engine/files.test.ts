import {
  chmod,
  lstat,
  mkdir,
  readFile,
  readdir,
  readlink,
  rm,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import {
  backupFiles,
  backupFilesFromStorage,
  restoreFiles,
  safeJoin,
  scopeMapper,
} from '../../src/engine/files/index.js';
import { snapshotTree as treeOf } from '../../src/engine/tree.js';
import { Repository } from '../../src/engine/repo/repository.js';
import { LocalStorage } from '../../src/storage/local.js';
import { newRepo, pseudoRandom, tempDir as makeTemp, type TestRepo } from './repo/helpers.js';

const temps: string[] = [];
const tempDir = async (prefix: string) => {
  const d = await makeTemp(prefix);
  temps.push(d);
  return d;
};

async function snapshotTree(root: string, rel = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(path.join(root, rel))).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    const abs = path.join(root, r);
    const st = await lstat(abs);
    if (st.isDirectory()) {
      out[r] = `dir ${st.mode & 0o7777}`;
      Object.assign(out, await snapshotTree(root, r));
    } else if (st.isSymbolicLink()) {
      out[r] = `link ${await readlink(abs)}`;
    } else {
      const sha = (await import('node:crypto'))
        .createHash('sha256')
        .update(await readFile(abs))
        .digest('hex');
      out[r] = `file ${st.mode & 0o7777} ${Math.floor(st.mtimeMs)} ${st.size} ${sha}`;
    }
  }
  return out;
}

describe('files source', () => {
  let t: TestRepo;
  let src: string;
  beforeAll(async () => {
    t = await newRepo();
    src = await tempDir('wv-src-');
    await mkdir(path.join(src, 'suppliers/7/portfolio/2024'), { recursive: true });
    await mkdir(path.join(src, 'weddings/42/docs'), { recursive: true });
    await mkdir(path.join(src, 'empty-dir'));
    await writeFile(path.join(src, 'empty.txt'), '');
    await writeFile(path.join(src, 'suppliers/7/portfolio/2024/photo.jpg'), pseudoRandom(150_000, 5));
    await writeFile(path.join(src, 'suppliers/7/portfolio/copy of photo.jpg'), pseudoRandom(150_000, 5));
    await writeFile(
      path.join(src, 'weddings/42/docs/contrat signé – Zoë & Łukasz 💍.txt'),
      // numbered lines: a text that repeats whole could make chunks equal to each other, stored
      // once, under some repositories' gear tables (the dedup count below assumes none)
      Array.from({ length: 3000 }, (_, i) => `Vertrag über Blumen ${i}\n`).join(''),
    );
    await writeFile(path.join(src, 'weddings/42/docs/seating.csv'), pseudoRandom(40_000, 6));
    await chmod(path.join(src, 'weddings/42/docs/seating.csv'), 0o640);
    await utimes(path.join(src, 'empty.txt'), 1_600_000_000, 1_600_000_000.5);
    await symlink('docs/seating.csv', path.join(src, 'weddings/42/latest-seating'));
  });
  afterAll(async () => {
    await t.cleanup();
    for (const d of temps) await rm(d, { recursive: true, force: true });
  });

  it('maps paths to scopes with captures', () => {
    const scopeOf = scopeMapper([
      { pattern: 'suppliers/*/**', scope: 'supplier:{1}' },
      { pattern: 'weddings/*/**', scope: 'wedding:{1}' },
    ]);
    expect(scopeOf('suppliers/7/portfolio/a.jpg')).toBe('supplier:7');
    expect(scopeOf('weddings/42/docs/x.pdf')).toBe('wedding:42');
    expect(scopeOf('empty.txt')).toBe('platform');
  });

  const rules = [
    { pattern: 'suppliers/*/**', scope: 'supplier:{1}' },
    { pattern: 'weddings/*/**', scope: 'wedding:{1}' },
  ];

  it('backs up and restores a tree byte for byte; duplicates stored once; unchanged files not re-read', async () => {
    const w = t.repo.writer();
    const entries = await backupFiles(w, { dir: src, scopes: rules });
    await w.flush();
    await w.close();
    const snap = await t.repo.saveSnapshot({
      type: 'files',
      tree: { files: { main: entries } },
      stats: w.stats,
    });

    const photo = entries.find((e) => e.path.endsWith('2024/photo.jpg'))!;
    const copy = entries.find((e) => e.path.endsWith('copy of photo.jpg'))!;
    expect(photo.ref!.scope).toBe('supplier:7');
    expect(copy.ref!.blobs).toEqual(photo.ref!.blobs);
    expect(w.stats.bytesNew).toBe(w.stats.bytesRead - 150_000);

    const loaded = await t.repo.loadSnapshot(snap.id);
    const out = await tempDir('wv-out-');
    const result = await restoreFiles(t.repo.reader(), treeOf(loaded.tree).files!.main!, {
      targetDir: out,
    });
    expect(result.files).toBe(5);
    expect(await snapshotTree(out)).toEqual(await snapshotTree(src));
    // Restoring again over the same tree replaces every file; a link planted where a file goes is
    // replaced too, never written through.
    const victim = path.join(await tempDir('wv-victim-'), 'victim.txt');
    await writeFile(victim, 'untouched');
    await rm(path.join(out, 'weddings/42/docs/seating.csv'));
    await symlink(victim, path.join(out, 'weddings/42/docs/seating.csv'));
    await restoreFiles(t.repo.reader(), treeOf(loaded.tree).files!.main!, {
      targetDir: out,
    });
    expect(await readFile(victim, 'utf8')).toBe('untouched');
    expect(await snapshotTree(out)).toEqual(await snapshotTree(src));
    // A repository that is not on this machine's disk streams its blobs through the main thread
    // instead of having them read from the pack files on the encoder threads: the same tree.
    const remote = Object.assign(Object.create(t.storage) as LocalStorage, { localFile: undefined });
    const viaStore = await Repository.open(remote, t.masterKey);
    const reader = viaStore.reader();
    expect(await reader.writeFile(photo.ref!, path.join(out, 'unused'))).toBe(false);
    const out2 = await tempDir('wv-out-');
    await restoreFiles(reader, treeOf(loaded.tree).files!.main!, {
      targetDir: out2,
    });
    expect(await snapshotTree(out2)).toEqual(await snapshotTree(src));

    // Second backup against the parent: nothing read; after one change, only that file.
    const w2 = t.repo.writer();
    const again = await backupFiles(w2, { dir: src, scopes: rules, parent: entries });
    expect(w2.stats.bytesRead).toBe(0);
    expect(again).toEqual(entries);
    await w2.close();
    await writeFile(path.join(src, 'weddings/42/docs/seating.csv'), pseudoRandom(40_001, 7));
    const w3 = t.repo.writer();
    await backupFiles(w3, { dir: src, scopes: rules, parent: entries });
    await w3.flush();
    await w3.close();
    expect(w3.stats.bytesRead).toBe(40_001);
  });

  it('backs up a bucket prefix, restorable byte for byte; unchanged objects not re-read', async () => {
    const store = new LocalStorage('bucket', await tempDir('wv-bucket-'));
    await store.put('portfolio/a/one.jpg', pseudoRandom(70_000, 61));
    await store.put('portfolio/b/two.txt', Buffer.from('hello '.repeat(1000)));
    await store.put('other/skip.txt', Buffer.from('not in the prefix'));
    const w = t.repo.writer();
    const entries = await backupFilesFromStorage(w, { storage: store, prefix: 'portfolio/', scopes: rules });
    await w.flush();
    await w.close();
    expect(entries.map((e) => e.path)).toEqual(['a/one.jpg', 'b/two.txt']);
    const w2 = t.repo.writer();
    await backupFilesFromStorage(w2, {
      storage: store,
      prefix: 'portfolio/',
      parent: entries,
      scopes: rules,
    });
    await w2.close();
    expect(w2.stats.bytesRead).toBe(0);
    const out = await tempDir('wv-out-');
    await restoreFiles(t.repo.reader(), entries, { targetDir: out });
    expect((await readFile(path.join(out, 'a/one.jpg'))).equals(pseudoRandom(70_000, 61))).toBe(true);
    expect((await readFile(path.join(out, 'b/two.txt'))).toString()).toBe('hello '.repeat(1000));
  });

  it('never restores outside the target directory', async () => {
    for (const bad of ['../evil', 'a/../../evil', '/etc/passwd', 'a//b', '', 'a\\..\\b']) {
      expect(() => safeJoin('/tmp/x', bad)).toThrow(ValidationError);
    }
    const out = await tempDir('wv-out-');
    await expect(
      restoreFiles(t.repo.reader(), [{ path: '../escape', type: 'dir', size: 0, mtimeMs: 0, mode: 0o755 }], {
        targetDir: out,
      }),
    ).rejects.toThrow(ValidationError);
  });
});
