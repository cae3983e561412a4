/**
 * The cost of durability on a local target: a files backup of a seeded portfolio with the local
 * store's syncs on and off, alternating (on, off, off, on, …), medians of each. Writes
 * bench/results/fsync-cost.json. BENCH_FILES_SCALE (default 0.1: ~300 MB) and BENCH_FSYNC_RUNS
 * (default 6) tune it; `npx tsx bench/fsync.ts`.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { postgresSourceSchema } from '../src/config/schema.js';
import { runBackup } from '../src/engine/backup.js';
import { Repository } from '../src/engine/repo/repository.js';
import { seedFiles } from '../src/seed/files.js';
import { LocalStorage } from '../src/storage/local.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const RESULTS = process.env.BENCH_RESULTS_DIR ?? path.join(ROOT, 'bench', 'results');
const WORK = path.join(process.env.BENCH_DIR ?? path.join(ROOT, 'data', 'bench'), 'fsync');
const FILES_SCALE = Number(process.env.BENCH_FILES_SCALE ?? '0.1');
const RUNS = Number(process.env.BENCH_FSYNC_RUNS ?? '6');

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function backupOnce(durable: boolean, files: string, masterKey: Buffer): Promise<number> {
  const repoDir = path.join(WORK, 'repo');
  rmSync(repoDir, { recursive: true, force: true });
  const storage = new LocalStorage('bench', repoDir, { durable });
  await Repository.init(storage, masterKey);
  const started = process.hrtime.bigint();
  await runBackup({
    storage,
    masterKey,
    type: 'files',
    components: ['files'],
    operationId: `fsync-${durable}-${Date.now()}`,
    sources: {
      postgres: { ...postgresSourceSchema.parse({}), url: '', supplierKey: undefined, changeSlot: false },
      files: [{ name: 'portfolio', path: files, prefix: '', scopes: [] }],
    },
  });
  return Number(process.hrtime.bigint() - started) / 1e9;
}

rmSync(WORK, { recursive: true, force: true });
const files = path.join(WORK, 'files');
mkdirSync(files, { recursive: true });
const seeded = await seedFiles(files, { scale: FILES_SCALE });
const masterKey = randomBytes(32);
const times: Record<'on' | 'off', number[]> = { on: [], off: [] };
for (let i = 0; i < RUNS; i++) {
  // on, off, off, on, on, off…: neither side always runs first on a warm cache
  const durable = (i + (i >> 1)) % 2 === 0;
  const s = await backupOnce(durable, files, masterKey);
  times[durable ? 'on' : 'off'].push(s);
  console.log(`run ${i + 1}: sync ${durable ? 'on ' : 'off'} ${s.toFixed(2)} s`);
}
const on = median(times.on);
const off = median(times.off);
const figures = {
  case: 'files-backup-fsync-cost',
  date: new Date().toISOString().slice(0, 10),
  files: seeded.files,
  bytes: seeded.bytes,
  runs_each: times.on.length,
  sync_on_s: times.on,
  sync_off_s: times.off,
  median_on_s: on,
  median_off_s: off,
  cost_pct: Math.round(((on - off) / off) * 1000) / 10,
};
mkdirSync(RESULTS, { recursive: true });
writeFileSync(path.join(RESULTS, 'fsync-cost.json'), JSON.stringify(figures, null, 2) + '\n');
console.log(JSON.stringify(figures));
rmSync(WORK, { recursive: true, force: true });
