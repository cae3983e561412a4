/**
 * `npm run bench`: our engine side by side with pg_dump/pg_restore and restic, in the same run.
 * Writes one JSON record per case to bench/results/<case>.json and prints a Markdown table.
 * BENCH_SCALE (default 1: ~1 GB of tables, ~3 GB of portfolio) and BENCH_FILES_SCALE tune the data.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { measure, sh, type Measured } from './measure.js';
import { benchReplication } from './replication.js';
import { benchPrune } from './prune.js';
import { benchErasure } from './erasure.js';
import { benchSchedulePlan } from './schedule-plan.js';
import { benchVerify } from './verify.js';
import { benchQueueThroughput } from './queue-throughput.js';
import { readFileSync } from 'node:fs';
import { quoteName as quoteIdent } from '../src/config/identifier.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const RESULTS = process.env.BENCH_RESULTS_DIR ?? path.join(ROOT, 'bench', 'results');
const WORK = process.env.BENCH_DIR ?? path.join(ROOT, 'data', 'bench');
const SCALE = process.env.BENCH_SCALE ?? '1';
const FILES_SCALE = process.env.BENCH_FILES_SCALE ?? SCALE;
const ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbUrl = (name: string) => ADMIN_URL.replace(/\/[^/]*$/, `/${name}`);
const SOURCE = dbUrl('wv_bench_source');
const FILES = path.join(WORK, 'files');

interface Side {
  tool?: string;
  wall_s: number;
  cpu_s: number;
  peak_rss_mb: number;
  stored_bytes: number | null;
}
interface Record_ {
  case: string;
  ours: Side;
  peer: Side;
  ratio: number;
  goal?: string;
  /** Wall times of every run, where the sides ran several times in turn (alternate()). */
  runs?: { ours: number[]; peer: number[] };
}
const records: Record_[] = [];

function env(repoDir: string): Record<string, string> {
  return {
    SOURCE_DATABASE_URL: SOURCE,
    WEDVAULT_DATA_DIR: repoDir,
    WEDVAULT_FILES_DIR: FILES,
    WEDVAULT_KEY_FILE: path.join(WORK, 'master.key'),
    DATABASE_URL: dbUrl('wv_bench_catalog'),
    LOG_LEVEL: 'warn',
    // incrementals from the row-change stream (needs wal_level = logical)
    WEDVAULT_CHANGE_SLOT: 'on',
  };
}

/** Drops the change slots on the bench source: a database with a slot cannot be dropped, and a slot holds WAL. */
async function dropSlots(): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  await c.query(
    `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = 'wv_bench_source' AND NOT active`,
  );
  await c.end();
}

async function du(p: string): Promise<number> {
  const r = await sh(`du -sb ${JSON.stringify(p)} | cut -f1`);
  return Number(r.stdout.trim());
}

const side = (m: Measured, stored: number | null, tool?: string): Side => ({
  ...(tool ? { tool } : {}),
  wall_s: m.wall_s,
  cpu_s: m.cpu_s,
  peak_rss_mb: m.peak_rss_mb,
  stored_bytes: stored,
});

function record(name: string, ours: Side, peer: Side, goal?: string, runs?: Record_['runs']): void {
  const r = {
    case: name,
    ours,
    peer,
    ratio: Math.round((ours.wall_s / peer.wall_s) * 100) / 100,
    goal,
    ...(runs ? { runs } : {}),
  };
  records.push(r);
  writeFileSync(path.join(RESULTS, `${name}.json`), JSON.stringify(r, null, 2) + '\n');
  console.log(`${name}: ours ${ours.wall_s}s, ${peer.tool} ${peer.wall_s}s, ratio ${r.ratio}`);
}

/** Runs per side of the cases below that alternate (BENCH_RUNS, default 3). */
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));

/**
 * Runs both sides RUNS times in turn, the first side changing each round, and keeps each side's
 * median run by wall time. This machine's speed drifts by up to half within an hour, so one run
 * each put whichever side met a slow minute at a disadvantage. Each run starts from scratch: the
 * functions clear what the previous run left, after a sync.
 */
async function alternate<T extends { m: Measured }>(
  ours: () => Promise<T>,
  peer: () => Promise<T>,
): Promise<{ ours: T; peer: T; runs: { ours: number[]; peer: number[] } }> {
  const done: { ours: T[]; peer: T[] } = { ours: [], peer: [] };
  // What the run before wrote is on disk before the next starts: writing back its gigabytes of
  // dirty pages would otherwise take CPU and disk from whichever side runs next.
  const run = async (side: () => Promise<T>) => {
    await sh('sync');
    return side();
  };
  for (let round = 0; round < RUNS; round++) {
    if (round % 2 === 0) {
      done.ours.push(await run(ours));
      done.peer.push(await run(peer));
    } else {
      done.peer.push(await run(peer));
      done.ours.push(await run(ours));
    }
  }
  const median = (xs: T[]) =>
    [...xs].sort((a, b) => a.m.wall_s - b.m.wall_s)[Math.floor((xs.length - 1) / 2)]!;
  return {
    ours: median(done.ours),
    peer: median(done.peer),
    runs: { ours: done.ours.map((r) => r.m.wall_s), peer: done.peer.map((r) => r.m.wall_s) },
  };
}

// as users run it: the bin sets the allocator (bin/with-allocator) and execs node in the same process
const wedvault = (args: string[], repoDir: string, extra: Record<string, string> = {}) =>
  measure(path.join(ROOT, 'bin', 'wedvault'), args, { ...env(repoDir), ...extra });

/**
 * Full backups with the tables that reach their wedding through foreign keys cut per wedding (as
 * shipped) against the same build told by overrides to keep them whole as platform tables, as
 * backups did before: the cost of the joins and the per-wedding cut.
 */
async function benchForeignKeyTenancy(): Promise<void> {
  const listed = await sh(`${path.join(ROOT, 'bin', 'wedvault')} tenancy --json`, env(WORK));
  // an override names a partitioned table by its root, as `%I.%I` quotes it
  const roots = new Set(await tables(SOURCE, 'NOT c.relispartition'));
  const reached = (JSON.parse(listed.stdout) as { schema: string; name: string; path: unknown[] }[])
    .filter((t) => t.path.length > 0)
    .map((t) => `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`)
    .filter((t) => roots.has(t));
  const config = path.join(WORK, 'platform-tenancy.json');
  const tenancy = Object.fromEntries(reached.map((t) => [t, 'platform']));
  writeFileSync(config, JSON.stringify({ sources: { postgres: { tenancy } } }));
  const fullInto = async (dir: string, extra: Record<string, string> = {}) => {
    rmSync(dir, { recursive: true, force: true });
    const m = await wedvault(['backup', '--type', 'full', '--components', 'database', '--json'], dir, {
      WEDVAULT_CHANGE_SLOT: 'off',
      ...extra,
    });
    return { m, stored: await du(dir) };
  };
  const runs = await alternate(
    () => fullInto(path.join(WORK, 'repo-fk-ours')),
    () => fullInto(path.join(WORK, 'repo-fk-platform'), { WEDVAULT_CONFIG: config }),
  );
  record(
    'db-full-fk-tenancy-vs-platform',
    side(runs.ours.m, runs.ours.stored),
    side(runs.peer.m, runs.peer.stored, `our full backup, ${reached.length} FK-reached tables as platform`),
    '≤ 1.10',
    runs.runs,
  );
}

async function tables(url: string, where = 'true'): Promise<string[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const { rows } = await c.query<{ t: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema') AND ${where} ORDER BY 1`,
  );
  await c.end();
  return rows.map((r) => r.t);
}

async function main(): Promise<void> {
  // the peers run in the same run: without them there is nothing to compare against
  for (const tool of ['pg_dump', 'pg_restore', 'psql', 'restic']) {
    const found = await sh(`command -v ${tool}`).catch(() => undefined);
    if (!found)
      throw new Error(`${tool} is needed for the benchmark (apt-get install postgresql-client restic)`);
  }
  // the CLI as it is installed: compiled (it starts in half the time of the sources under tsx)
  await sh('npm run --silent build');
  mkdirSync(RESULTS, { recursive: true });
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  writeFileSync(path.join(WORK, 'master.key'), randomBytes(32).toString('hex'), { mode: 0o600 });

  await dropSlots();
  console.log(`seeding scale ${SCALE} (files scale ${FILES_SCALE})…`);
  await sh(
    `npm run --silent seed -- --scale ${SCALE} --files-scale ${FILES_SCALE} --database-url ${SOURCE} --files-dir ${FILES} --force`,
  );
  await sh(`psql -q ${SOURCE} -c 'VACUUM ANALYZE'`);

  // Full database backup vs pg_dump -Fc and vs the floor: COPY of every table to /dev/null.
  // every table once (a partitioned one through its root), in one session: quoted names and
  // partitioned roots need the SELECT form, which psql -c through a shell would mangle
  const list = await tables(SOURCE, 'NOT c.relispartition');
  const copyAll = path.join(WORK, 'copy-all.sql');
  writeFileSync(copyAll, list.map((t) => `COPY (SELECT * FROM ${t}) TO STDOUT;\n`).join(''));
  const bare = await sh(`psql -qAt ${SOURCE} -f ${copyAll} > /dev/null`);
  const dump = path.join(WORK, 'dump.fc');
  const pgDump = await measure('pg_dump', ['-Fc', '-f', dump, SOURCE]);
  const repo = path.join(WORK, 'repo-db');
  const full = await wedvault(['backup', '--type', 'full', '--components', 'database', '--json'], repo);
  const fullId = JSON.parse(full.stdout).recoveryPointId as string;
  const fullStored = await du(repo);
  record('db-full-vs-pg_dump', side(full, fullStored), side(pgDump, await du(dump), 'pg_dump -Fc'), '≤ 0.3');
  record('db-full-vs-bare-copy', side(full, fullStored), side(bare, null, 'COPY TO /dev/null'), '≤ 1.3');

  // Incremental after 1% of rows change.
  await sh(`psql -q ${SOURCE} -c "UPDATE guests SET dietary = 'changed' WHERE random() < 0.01"`);
  const incr = await wedvault(
    ['backup', '--type', 'incremental', '--components', 'database', '--json'],
    repo,
  );
  const incrStored = (await du(repo)) - fullStored;
  record(
    'db-incremental-1pct',
    side(incr, incrStored),
    side(full, fullStored, 'our full backup'),
    '≤ 0.10 time, ≤ 0.03 bytes',
  );

  await dropSlots();
  await benchForeignKeyTenancy();

  // Restore vs pg_restore -j2 of the same data, each into a new database.
  const freshDatabase = async (name: string, create: boolean) => {
    const c = new pg.Client({ connectionString: ADMIN_URL });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    if (create) await c.query(`CREATE DATABASE ${name}`);
    await c.end();
  };
  const restores = await alternate(
    async () => {
      await freshDatabase('wv_bench_restore_ours', false);
      const target = dbUrl('wv_bench_restore_ours');
      return { m: await wedvault(['restore', fullId, '--target-database', target, '--json'], repo) };
    },
    async () => {
      await freshDatabase('wv_bench_restore_peer', true);
      return { m: await measure('pg_restore', ['-j2', '-d', dbUrl('wv_bench_restore_peer'), dump]) };
    },
  );
  record(
    'db-restore-vs-pg_restore',
    side(restores.ours.m, null),
    side(restores.peer.m, null, 'pg_restore -j2'),
    '≤ 0.9',
    restores.runs,
  );

  // Replication of the database repository to each emulator (issue: cloud targets).
  if (process.env.BENCH_SKIP_REPLICATION !== '1') {
    for (const r of await benchReplication(path.join(repo, 'targets', 'local-primary'))) {
      writeFileSync(path.join(RESULTS, `${r.case}.json`), JSON.stringify(r, null, 2) + '\n');
      console.log(
        `${r.case}: ${r.mb_per_s} MB/s, ${r.puts_per_gb} PUTs/GB, nothing-to-copy pass ${r.noop_wall_s}s for ${r.objects} objects`,
      );
    }
  }

  // Prune of the database repository after forgetting half its points, vs restic forget --prune.
  {
    const masterKey = Buffer.from(readFileSync(path.join(WORK, 'master.key'), 'utf8').trim(), 'hex');
    const p = await benchPrune({ dataDir: repo, work: WORK, masterKey, sourceUrl: SOURCE, wedvault });
    writeFileSync(path.join(RESULTS, `${p.case}.json`), JSON.stringify(p, null, 2) + '\n');
    console.log(
      `${p.case}: ours ${p.ours.wall_s}s ${p.ours.peak_rss_mb} MB peak, ${p.ours.bytes_freed} B freed; ` +
        `restic ${p.peer.wall_s}s ${p.peer.peak_rss_mb} MB peak, ${p.peer.bytes_freed} B freed`,
    );
  }

  // Erasure of one wedding from three copies of the database repository.
  try {
    const e = await benchErasure({ dataDir: repo, work: WORK, wedding: '42', wedvault });
    writeFileSync(path.join(RESULTS, `${e.case}.json`), JSON.stringify(e, null, 2) + '\n');
    console.log(
      `${e.case}: ${e.wall_s}s, ${e.keys_destroyed} key sets destroyed, ${e.objects_touched} objects touched`,
    );
  } catch (err) {
    // a case of its own: its failure is reported, the peers' cases still run
    console.error(`erasure case failed: ${(err as Error).message}`);
  }

  // Wedding-aware schedules: planning a day for 100,000 weddings (BENCH_SCHEDULE_WEDDINGS), time and Redis memory.
  try {
    const sp = await benchSchedulePlan(Number(process.env.BENCH_SCHEDULE_WEDDINGS ?? 100_000));
    writeFileSync(path.join(RESULTS, `${sp.case}.json`), JSON.stringify(sp, null, 2) + '\n');
    console.log(
      `${sp.case}: ${sp.weddings} weddings, first tick ${sp.first_tick.wall_s}s (${sp.first_tick.due} due, ` +
        `${Math.round(sp.first_tick.redis_bytes / 2 ** 20)} MiB in Redis), day preview ${sp.preview_day.wall_s}s`,
    );
  } catch (err) {
    console.error(`schedule-plan case failed: ${(err as Error).message}`);
  }

  // Portfolio: files backup and restore vs restic.
  // Each backup into a new repository (the last one of each side is restored below).
  const filesRepo = path.join(WORK, 'repo-files');
  const resticRepo = path.join(WORK, 'restic');
  const resticEnv = { RESTIC_REPOSITORY: resticRepo, RESTIC_PASSWORD: 'bench' };
  let filesId = '';
  const backups = await alternate(
    async () => {
      rmSync(filesRepo, { recursive: true, force: true });
      const m = await wedvault(['backup', '--type', 'files', '--json'], filesRepo);
      filesId = JSON.parse(m.stdout).recoveryPointId as string;
      return { m, stored: await du(filesRepo) };
    },
    async () => {
      rmSync(resticRepo, { recursive: true, force: true });
      await sh('restic init -q', resticEnv);
      const m = await measure('restic', ['backup', '-q', FILES], resticEnv);
      return { m, stored: await du(resticRepo) };
    },
  );
  record(
    'files-backup-vs-restic',
    side(backups.ours.m, backups.ours.stored),
    side(backups.peer.m, backups.peer.stored, 'restic backup'),
    '≤ 0.7',
    backups.runs,
  );
  const ourOut = path.join(WORK, 'restore-ours');
  const resticOut = path.join(WORK, 'restore-restic');
  const fileRestores = await alternate(
    async () => {
      rmSync(ourOut, { recursive: true, force: true });
      return { m: await wedvault(['restore', filesId, '--target-dir', ourOut], filesRepo) };
    },
    async () => {
      rmSync(resticOut, { recursive: true, force: true });
      return { m: await measure('restic', ['restore', 'latest', '-q', '--target', resticOut], resticEnv) };
    },
  );
  record(
    'files-restore-vs-restic',
    side(fileRestores.ours.m, null),
    side(fileRestores.peer.m, null, 'restic restore'),
    '≤ 0.7',
    fileRestores.runs,
  );
  await sh(`diff -r ${FILES} ${ourOut} > /dev/null`);

  // Verification of the portfolio repository beside restic's own full check of the same data.
  const key = Buffer.from(readFileSync(path.join(WORK, 'master.key'), 'utf8').trim(), 'hex');
  const v = await benchVerify(path.join(filesRepo, 'targets', 'local-primary'), key, resticEnv);
  writeFileSync(path.join(RESULTS, `${v.case}.json`), JSON.stringify(v, null, 2) + '\n');
  console.log(
    `${v.case}: ours ${v.ours.mb_per_s} MB/s, restic ${v.peer.mb_per_s} MB/s; quick ${v.quick.s_per_10k_objects}s per 10k objects`,
  );

  // BullMQ throughput with priorities beside without (writes its own JSON).
  try {
    const q = await benchQueueThroughput();
    console.log(
      `${q.case}: with priorities ${q.with_priorities.enqueue_per_s} enqueued/s, ${q.with_priorities.complete_per_s} completed/s; without ${q.without_priorities.enqueue_per_s}/s, ${q.without_priorities.complete_per_s}/s`,
    );
  } catch (err) {
    console.error(`queue-throughput case failed: ${(err as Error).message}`);
  }

  const table = [
    '| case | ours wall s | ours CPU s | ours peak RSS MB | ours stored B | peer | peer wall s | peer CPU s | peer stored B | ratio | goal |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...records.map(
      (r) =>
        `| ${r.case} | ${r.ours.wall_s} | ${r.ours.cpu_s} | ${r.ours.peak_rss_mb} | ${r.ours.stored_bytes ?? ''} | ${r.peer.tool} | ${r.peer.wall_s} | ${r.peer.cpu_s} | ${r.peer.stored_bytes ?? ''} | ${r.ratio} | ${r.goal ?? ''} |`,
    ),
  ].join('\n');
  console.log(`\n${table}`);
  writeReadmeTable(table);
}

/** Puts the table between the README's bench markers, so the README always shows the last run. */
function writeReadmeTable(table: string): void {
  const readme = path.join(ROOT, 'README.md');
  const text = readFileSync(readme, 'utf8');
  const [start, end] = ['<!-- bench:table:start -->', '<!-- bench:table:end -->'];
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from < 0 || to < from) {
    console.log('README.md has no bench markers: table not written there');
    return;
  }
  const stamp = `Scale ${SCALE} (files scale ${FILES_SCALE}), ${new Date().toISOString().slice(0, 10)}:`;
  writeFileSync(readme, `${text.slice(0, from + start.length)}\n${stamp}\n\n${table}\n${text.slice(to)}`);
}

await main();
