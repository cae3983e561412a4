/**
 * `npm run soak`: the fault campaign as a run by hand. API, scheduler and workers run as separate
 * processes against a Redis of the soak's own (it keeps nothing on disk) and real PostgreSQL; for
 * SOAK_MINUTES (default 30) it requests mixed backups and validations through the API, SIGKILLs a
 * random worker every 20–60 s and restarts Redis every few minutes. Then it lets the service settle
 * and counts: operations started, completed, failed with a reason, stuck (must be 0), and restores
 * checked byte for byte against the sources. Figures go to bench/results/soak.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Repository } from '../src/engine/repo/repository.js';
import { restoreSnapshot } from '../src/engine/restore.js';
import { snapshotTree } from '../src/engine/tree.js';
import { seedDatabase } from '../src/seed/database.js';
import { seedFiles } from '../src/seed/files.js';
import { freePort } from '../test/helpers/emulators.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const MINUTES = Number(process.env.SOAK_MINUTES ?? 30);
const REDIS_RESTART_MS = Number(process.env.SOAK_REDIS_RESTART_S ?? 240) * 1000;
const SETTLE_MS = Number(process.env.SOAK_SETTLE_S ?? 300) * 1000;
const RESTORES = Number(process.env.SOAK_RESTORES ?? 6);
const ADMIN_URL = process.env.SOAK_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbUrl = (name: string) => ADMIN_URL.replace(/\/[^/]*$/, `/${name}`);

const id = randomBytes(3).toString('hex');
const work = mkdtempSync(path.join(tmpdir(), `wv-soak-${id}-`));
const filesDir = path.join(work, 'files');
const catalogDb = `wv_soak_catalog_${id}`;
const sourceDb = `wv_soak_source_${id}`;
const adminKey = randomBytes(24).toString('hex');

function log(msg: string): void {
  console.log(`${new Date().toISOString().slice(11, 19)} soak: ${msg}`);
}

const redisPort = await freePort();
const apiPort = await freePort();
const env: Record<string, string> = {
  DATABASE_URL: dbUrl(catalogDb),
  SOURCE_DATABASE_URL: dbUrl(sourceDb),
  REDIS_URL: `redis://127.0.0.1:${redisPort}`,
  WEDVAULT_REDIS_PREFIX: `wvsoak-${id}`,
  WEDVAULT_DATA_DIR: path.join(work, 'data'),
  WEDVAULT_FILES_DIR: filesDir,
  WEDVAULT_KEY_FILE: path.join(work, 'keys', 'master.key'),
  WEDVAULT_MASTER_KEY: randomBytes(32).toString('hex'),
  WEDVAULT_ADMIN_KEY: adminKey,
  WEDVAULT_JOB_LOCK_MS: '5000',
  WEDVAULT_RECONCILE_MS: '5000',
  WEDVAULT_RATE_LIMIT_PER_MINUTE: '100000',
  PORT: String(apiPort),
  LOG_LEVEL: process.env.SOAK_LOG_LEVEL ?? 'warn',
};

let redis: ChildProcess | undefined;
function startRedis(): void {
  redis = spawn(
    'redis-server',
    ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
}

const logDir = path.join(work, 'logs');
mkdirSync(logDir, { recursive: true });
const procs = new Map<string, ChildProcess>();
function startRole(name: string, args: string[]): void {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => out.push(d));
  child.on('exit', (code, signal) => {
    mkdirSync(logDir, { recursive: true });
    writeFileSync(path.join(logDir, `${name}-${child.pid}.log`), Buffer.concat(out));
    if (signal !== 'SIGKILL' && !stopping) {
      unexpectedExits.push(`${name} exited ${code ?? signal}`);
      log(`${name} exited on its own (${code ?? signal}); restarting it`);
      startRole(name, args);
    }
  });
  procs.set(name, child);
}
let stopping = false;
// an interrupted or failed soak must not leave its service processes and Redis running
function killAll(): void {
  stopping = true;
  for (const c of procs.values()) c.kill('SIGKILL');
  redis?.kill('SIGKILL');
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
const unexpectedExits: string[] = [];

interface ApiJson {
  recoveryPoints?: { id: string }[];
  error?: unknown;
}

async function api(
  method: string,
  url: string,
  body?: unknown,
): Promise<{ status: number; json: ApiJson | null }> {
  try {
    const res = await fetch(`http://127.0.0.1:${apiPort}${url}`, {
      method,
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, json: (await res.json().catch(() => null)) as ApiJson | null };
  } catch (err) {
    return { status: 0, json: { error: String(err) } };
  }
}

/** Soak files are named by their SHA-256 and never change, so any restored copy can be checked. */
function addFile(): void {
  const data = randomBytes(randomInt(64 << 10, 2 << 20));
  const name = createHash('sha256').update(data).digest('hex');
  const dir = path.join(filesDir, 'soak', name.slice(0, 2));
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${name}.bin`), data);
}

// ---- setup
log(`work dir ${work}; redis :${redisPort}; api :${apiPort}`);
await seedDatabase(env.SOURCE_DATABASE_URL!, { scale: Number(process.env.SOAK_SCALE ?? 0.002), force: true });
await seedFiles(filesDir, { scale: Number(process.env.SOAK_FILES_SCALE ?? 0.005) });
startRedis();
await sleep(500);
startRole('api', ['--role', 'api']);
startRole('scheduler', ['--role', 'scheduler']);
const WORKERS = ['worker-a', 'worker-b'];
for (const w of WORKERS) startRole(w, ['--role', 'worker', '--concurrency', '2']);
for (let i = 0; i < 60 && (await api('GET', '/healthz')).status !== 200; i++) await sleep(1000);

// ---- load
const counts = { requested: 0, accepted: 0, refused: 0, validations: 0, kills: 0, redisRestarts: 0 };
const refusals: Record<string, number> = {};
const end = Date.now() + MINUTES * 60_000;
let nextKill = Date.now() + randomInt(20_000, 60_000);
let nextRedis = Date.now() + REDIS_RESTART_MS;
const weddings = ['1', '2', '3', '4', '5'];
while (Date.now() < end) {
  if (Math.random() < 0.5) addFile();
  const type = (['files', 'files', 'full', 'incremental'] as const)[randomInt(4)];
  const body: Record<string, unknown> = { type };
  if (Math.random() < 0.3) body.weddingId = weddings[randomInt(weddings.length)];
  counts.requested++;
  const r = await api('POST', '/api/backups', body);
  if (r.status === 202 || r.status === 200) counts.accepted++;
  else {
    counts.refused++;
    refusals[r.status] = (refusals[r.status] ?? 0) + 1;
  }
  if (Math.random() < 0.15) {
    const points = await api('GET', '/api/backups?limit=20');
    const list = points.json?.recoveryPoints ?? [];
    if (list.length) {
      const mode = (['quick', 'full', 'drill'] as const)[randomInt(3)];
      const v = await api('POST', '/api/backups/validation', {
        recoveryPointId: list[randomInt(list.length)]!.id,
        mode,
      });
      if (v.status === 202) counts.validations++;
    }
  }
  if (Date.now() > nextKill) {
    const name = WORKERS[randomInt(WORKERS.length)]!;
    procs.get(name)?.kill('SIGKILL');
    counts.kills++;
    log(`SIGKILL ${name}`);
    await sleep(randomInt(500, 3000));
    startRole(name, ['--role', 'worker', '--concurrency', '2']);
    nextKill = Date.now() + randomInt(20_000, 60_000);
  }
  if (Date.now() > nextRedis) {
    redis?.kill('SIGKILL');
    counts.redisRestarts++;
    log('Redis killed');
    await sleep(randomInt(2000, 8000));
    startRedis();
    log('Redis back (empty)');
    nextRedis = Date.now() + REDIS_RESTART_MS;
  }
  await sleep(randomInt(2000, 6000));
}

// ---- settle: no more faults; every operation must reach an end
log('load stopped; settling');
const catalog = new pg.Client({ connectionString: env.DATABASE_URL });
await catalog.connect();
const openOps = async () =>
  Number(
    (
      await catalog.query<{ n: string }>(
        `SELECT (SELECT count(*) FROM backup_operations WHERE state IN ('queued', 'running'))
              + (SELECT count(*) FROM backup_tests WHERE status IN ('queued', 'running')) AS n`,
      )
    ).rows[0]!.n,
  );
const settleEnd = Date.now() + SETTLE_MS;
while (Date.now() < settleEnd && (await openOps()) > 0) await sleep(5000);

const ops = (
  await catalog.query<{ state: string; n: string; reasons: string[] }>(
    `SELECT state, count(*) AS n, array_agg(DISTINCT coalesce(error->>'code', '') || ': ' || left(coalesce(error->>'message', ''), 80)) AS reasons
       FROM backup_operations GROUP BY state`,
  )
).rows;
const tests = (
  await catalog.query<{ mode: string; status: string; n: string }>(
    `SELECT mode, status, count(*) AS n FROM backup_tests GROUP BY mode, status ORDER BY mode, status`,
  )
).rows;
const failedTests = (
  await catalog.query<{ mode: string; problems: unknown }>(
    `SELECT mode, left(problems::text, 300) AS problems FROM backup_tests WHERE status = 'failed' LIMIT 5`,
  )
).rows;
const failedWithoutReason = Number(
  (
    await catalog.query<{ n: string }>(
      `SELECT count(*) AS n FROM backup_operations WHERE state = 'failed' AND coalesce(error->>'message', '') = ''`,
    )
  ).rows[0]!.n,
);
const byState = Object.fromEntries(ops.map((o) => [o.state, Number(o.n)]));
const ready = await api('GET', '/readyz');
// after Redis came back empty several times, the schedules must all be there again
const { Queue } = await import('bullmq');
const { Redis } = await import('ioredis');
const connection = new Redis(env.REDIS_URL!, { maxRetriesPerRequest: null });
let schedulers = 0;
for (const name of ['backup', 'verify']) {
  const q = new Queue(name, { connection, prefix: `{${env.WEDVAULT_REDIS_PREFIX}}` });
  schedulers += (await q.getJobSchedulers()).length;
  await q.close();
}
connection.disconnect();

// ---- restores: the newest completed points of each kind, checked against the sources
const primary = path.join(env.WEDVAULT_DATA_DIR!, 'targets', 'local-primary');
const { LocalStorage } = await import('../src/storage/local.js');
const repo = await Repository.open(
  new LocalStorage('local-primary', primary),
  Buffer.from(env.WEDVAULT_MASTER_KEY!, 'hex'),
);
const points = (
  await catalog.query<{ id: string; type: string }>(
    `SELECT id, type FROM recovery_points ORDER BY random() LIMIT $1`,
    [RESTORES],
  )
).rows;
const restores: { id: string; type: string; ok: boolean; detail: string }[] = [];
const source = new pg.Client({ connectionString: env.SOURCE_DATABASE_URL });
await source.connect();
for (const p of points) {
  const dir = mkdtempSync(path.join(work, 'restore-'));
  const db = `wv_soak_restore_${id}_${restores.length}`;
  try {
    const snap = await repo.loadSnapshot(p.id);
    const tree = snapshotTree(snap.tree);
    await restoreSnapshot(repo, p.id, {
      targetDir: tree.files ? dir : undefined,
      targetDatabase: tree.postgres ? dbUrl(db) : undefined,
    });
    let checked = 0;
    for (const rel of readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (!rel.isFile()) continue;
      const file = path.join(rel.parentPath, rel.name);
      const original = path.join(filesDir, path.relative(dir, file));
      if (!readFileSync(file).equals(readFileSync(original))) throw new Error(`${file} differs`);
      checked++;
    }
    if (tree.postgres) checked += await compareDatabases(source, dbUrl(db));
    restores.push({ id: p.id, type: p.type, ok: true, detail: `${checked} files and tables equal` });
  } catch (err) {
    restores.push({ id: p.id, type: p.type, ok: false, detail: String(err) });
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await source.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => undefined);
  }
}

/** Every table's rows, as sorted text, hashed on both sides: the restore equals the source. */
async function compareDatabases(a: pg.Client, urlB: string): Promise<number> {
  const b = new pg.Client({ connectionString: urlB });
  await b.connect();
  try {
    const { rows: tables } = await a.query<{ t: string }>(
      `SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`,
    );
    for (const { t } of tables) {
      const q = `SELECT md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) AS d FROM ${t} x`;
      const [da, db] = [(await a.query(q)).rows[0].d, (await b.query(q)).rows[0].d];
      if (da !== db) throw new Error(`table ${t} differs after restore`);
    }
    return tables.length;
  } finally {
    await b.end();
  }
}

const result = {
  date: new Date().toISOString(),
  minutes: MINUTES,
  ...counts,
  refusals,
  operations: {
    started: Object.values(byState).reduce((a, b) => a + b, 0),
    completed: byState.completed ?? 0,
    failed: byState.failed ?? 0,
    failedWithoutReason,
    stuck: (byState.queued ?? 0) + (byState.running ?? 0),
    failureReasons: ops.find((o) => o.state === 'failed')?.reasons ?? [],
  },
  validations: tests.map((t) => ({ mode: t.mode, status: t.status, n: Number(t.n) })),
  failedValidations: failedTests,
  stuckValidations: tests
    .filter((t) => t.status === 'queued' || t.status === 'running')
    .reduce((n, t) => n + Number(t.n), 0),
  restores: { checked: restores.length, ok: restores.filter((r) => r.ok).length, detail: restores },
  unexpectedExits,
  readyAtEnd: ready.status,
  schedulersAtEnd: schedulers,
};
writeFileSync(path.join(ROOT, 'bench', 'results', 'soak.json'), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify(result, null, 2));

stopping = true;
for (const c of procs.values()) c.kill('SIGTERM');
await sleep(3000);
for (const c of procs.values()) c.kill('SIGKILL');
redis?.kill('SIGKILL');
await source.end();
await catalog.query('SELECT 1');
await catalog.end();
const admin = new pg.Client({ connectionString: ADMIN_URL });
await admin.connect();
await admin.query(
  `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`,
  [sourceDb],
);
for (const d of [catalogDb, sourceDb]) await admin.query(`DROP DATABASE IF EXISTS ${d} WITH (FORCE)`);
await admin.end();
if (!process.env.SOAK_KEEP) rmSync(work, { recursive: true, force: true });
process.exit(result.operations.stuck === 0 && result.restores.ok === result.restores.checked ? 0 : 1);
