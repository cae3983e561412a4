// Durability on the local store: each object's file, then its directory, is synced before the snapshot that names it is written, and the snapshot after. Watched with strace in a real child process, and through a recording Storage in this one.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { LocalStorage } from '../../../src/storage/local.js';
import type { Body, ByteRange, ObjectInfo, PutOptions, Storage } from '../../../src/storage/types.js';
import { Repository } from '../../../src/engine/repo/repository.js';
import { pseudoRandom, SMALL_CHUNKER, streamOf, tempDir } from './helpers.js';

const hasStrace = spawnSync('strace', ['-V']).status === 0;

interface Event {
  op: 'fsync' | 'rename';
  path: string;
  to?: string;
}

/** fsync and rename calls in the order they returned (a call strace saw interrupted counts when it resumed). */
function parseStrace(text: string): Event[] {
  const events: Event[] = [];
  const pending = new Map<string, Event>();
  for (const line of text.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, pid, call] = m as unknown as [string, string, string];
    const resumed = /^<\.\.\. (\w+) resumed>.*= 0$/.exec(call);
    if (resumed) {
      const e = pending.get(pid);
      pending.delete(pid);
      if (e) events.push(e);
      continue;
    }
    let e: Event | undefined;
    const sync = /^f(?:data)?sync\(\d+<([^>]+)>/.exec(call);
    if (sync) e = { op: 'fsync', path: sync[1]! };
    else if (/^rename/.test(call)) {
      const names = [...call.matchAll(/"([^"]+)"/g)].map((x) => x[1]!);
      if (names.length === 2) e = { op: 'rename', path: names[0]!, to: names[1]! };
    }
    if (!e) continue;
    if (call.endsWith('<unfinished ...>')) pending.set(pid, e);
    else if (/= 0$/.test(call)) events.push(e);
  }
  return events;
}

it.skipIf(!hasStrace)(
  'strace: every pack, index and key file and its directory are synced before the snapshot, which is synced too',
  async () => {
    const dir = await tempDir('wv-durable-');
    const fixture = path.join(import.meta.dirname, 'fixtures', 'durable-backup.mts');
    const out = path.join(dir, '..', `${path.basename(dir)}.strace`);
    const trace = ['-f', '-y', '-qq', '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2', '-o', out];
    const run = spawnSync('strace', [...trace, process.execPath, '--import', 'tsx', fixture, dir], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    const text = readFileSync(out, 'utf8');
    await rm(dir, { recursive: true, force: true });
    await rm(out, { force: true });
    expect(run.status, run.stderr).toBe(0);
    const snapshotId = run.stdout.trim();
    const events = parseStrace(text);
    const at = (pred: (e: Event) => boolean) => events.findIndex(pred);
    const snapshotFile = path.join(dir, 'snapshots', snapshotId);
    const snapRename = at((e) => e.op === 'rename' && e.to === snapshotFile);
    expect(snapRename).toBeGreaterThan(0);

    const named = events
      .slice(0, snapRename)
      .filter((e) => e.op === 'rename' && /\/(data|index|keys)\//.test(e.to!));
    expect(named.filter((e) => e.to!.includes('/data/')).length).toBeGreaterThan(3);
    expect(named.some((e) => e.to!.includes('/index/'))).toBe(true);
    for (const r of named) {
      const renamed = events.indexOf(r);
      // the file's bytes before its name, its directory entry before the snapshot
      expect(
        at((e) => e.op === 'fsync' && e.path === r.path),
        r.to,
      ).toBeLessThan(renamed);
      const dirSync = events.findIndex(
        (e, i) => i > renamed && e.op === 'fsync' && e.path === path.dirname(r.to!),
      );
      expect(dirSync, `directory of ${r.to}`).toBeGreaterThan(renamed);
      expect(dirSync, `directory of ${r.to}`).toBeLessThan(snapRename);
    }
    const snap = events[snapRename]!;
    expect(at((e) => e.op === 'fsync' && e.path === snap.path)).toBeLessThan(snapRename);
    expect(
      events.findIndex(
        (e, i) => i > snapRename && e.op === 'fsync' && e.path === path.join(dir, 'snapshots'),
      ),
    ).toBeGreaterThan(snapRename);
  },
  180_000,
);

/** Passes every call through to a local store and records puts (when they finish) and syncs. */
class Recording implements Storage {
  readonly log: string[] = [];
  constructor(private readonly inner: LocalStorage) {}
  get name() {
    return this.inner.name;
  }
  async put(key: string, body: Body, opts?: PutOptions) {
    await this.inner.put(key, body, opts);
    this.log.push(`put ${key}`);
  }
  get(key: string, range?: ByteRange) {
    return this.inner.get(key, range);
  }
  stat(key: string): Promise<ObjectInfo> {
    return this.inner.stat(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  async sync() {
    this.log.push('sync');
    await this.inner.sync();
  }
}

it('through the Storage interface: a sync after every object a snapshot needs, before it; and after it', async () => {
  const dir = await tempDir('wv-durable-');
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const storage = new Recording(new LocalStorage('rec', dir));
  const repo = await Repository.init(storage, pseudoRandom(32, 9), { chunker: SMALL_CHUNKER });
  const w = repo.writer({ packSize: 20_000, indexEvery: 2 });
  const ref = await w.write('wedding:2', streamOf(pseudoRandom(150_000, 8)));
  await w.flush();
  await w.close();
  await repo.saveSnapshot({ type: 'full', tree: { ref }, stats: w.stats });
  const log = storage.log;
  const snap = log.findIndex((l) => l.startsWith('put snapshots/'));
  const lastSyncBefore = log.lastIndexOf('sync', snap);
  const needed = log.slice(0, snap).filter((l) => /^put (data|index|keys)\//.test(l));
  expect(needed.length).toBeGreaterThan(4);
  for (const l of needed) expect(log.indexOf(l)).toBeLessThan(lastSyncBefore);
  expect(log.indexOf('sync', snap)).toBeGreaterThan(snap);
  // each index write syncs first (two may run at once, so their syncs and puts can interleave)
  const indexes = log.slice(0, snap).filter((l) => l.startsWith('put index/')).length;
  const syncs = log
    .slice(
      log.findIndex((l) => l.startsWith('put data/')),
      snap,
    )
    .filter((l) => l === 'sync');
  expect(indexes).toBeGreaterThan(1);
  expect(syncs.length).toBeGreaterThanOrEqual(indexes + 1);
});
