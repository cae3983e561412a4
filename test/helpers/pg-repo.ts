/** A database backed up into a real repository on disk (chunked, compressed, encrypted, packed), its tree read back as a restore finds it. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ContentReader } from '../../src/engine/api.js';
import { backupPostgres, type PostgresBackupOptions } from '../../src/engine/postgres/backup.js';
import { Repository } from '../../src/engine/repo/repository.js';
import { snapshotTree, type PgTree } from '../../src/engine/tree.js';
import { LocalStorage } from '../../src/storage/local.js';

export interface RepoBackups {
  backup(opts: PostgresBackupOptions): Promise<{ tree: PgTree; reader: ContentReader }>;
  /** Removes every repository made; for afterAll. */
  cleanup(): void;
}

export function repoBackups(label: string): RepoBackups {
  const dirs: string[] = [];
  return {
    async backup(opts) {
      const dir = mkdtempSync(path.join(tmpdir(), `wv-${label}-`));
      dirs.push(dir);
      const masterKey = randomBytes(32);
      const repo = await Repository.init(new LocalStorage(label, dir), masterKey);
      const w = repo.writer();
      const postgres = await backupPostgres(w, opts);
      await w.flush();
      await w.close();
      const { id } = await repo.saveSnapshot({ type: 'full', tree: { postgres }, stats: w.stats });
      const reopened = await Repository.open(new LocalStorage(label, dir), masterKey);
      const { tree } = await reopened.loadSnapshot(id);
      return { tree: snapshotTree(tree).postgres!, reader: reopened.reader() };
    },
    cleanup() {
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    },
  };
}
