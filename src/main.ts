/** Entry point: `--role all` (default) runs API, workers and scheduler in one process; each role can run alone. */
import { parseArgs } from 'node:util';
import type { Server } from 'node:http';
import { ensureAdminKey, warnAboutKeys } from './bootstrap.js';
import { boundHeapGrowth } from './heap.js';
import { loadConfig } from './config/index.js';
import { createContext } from './context.js';
import { ConfigError } from './errors.js';
import { createApp } from './http/app.js';
import { createLogger } from './log.js';
import { closeCeremonyPools } from './engine/postgres/ceremony.js';
import { ALL_QUEUES, type QueueName } from './queues/names.js';
import { installSchedules } from './producers/schedules.js';
import { EXIT_SOFTWARE, installProcessHandlers, untilReady } from './process.js';
import { startReconciler, type Reconciler } from './workers/reconciler.js';
import { startSlaMonitor } from './workers/sla-monitor.js';
import { startLoadLoops, type LoadLoops } from './workers/load-loops.js';
import { startCapture, type CaptureLoop } from './workers/capture.js';
import { superviseWorkers, type Supervisor } from './workers/supervisor.js';

boundHeapGrowth();

const { values } = parseArgs({
  options: {
    role: { type: 'string', default: 'all' },
    queues: { type: 'string' },
    concurrency: { type: 'string' },
  },
});

let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`wedvault: configuration error: ${err.message}`);
    process.exit(78);
  }
  throw err;
}
const log = createLogger(config.logLevel, { role: values.role });
installProcessHandlers(log);
const role = values.role!;
if (!['all', 'api', 'worker', 'scheduler'].includes(role)) {
  console.error(`wedvault: --role must be all, api, worker or scheduler (got "${role}")`);
  process.exit(64);
}
const queues = (values.queues ? values.queues.split(',') : ALL_QUEUES) as QueueName[];
for (const q of queues) {
  if (!ALL_QUEUES.includes(q)) {
    console.error(`wedvault: --queues: unknown queue "${q}" (known: ${ALL_QUEUES.join(', ')})`);
    process.exit(64);
  }
}
const concurrency = values.concurrency ? Number(values.concurrency) : config.workerConcurrency;
if (!Number.isInteger(concurrency) || concurrency < 1) {
  console.error('wedvault: --concurrency must be a positive integer');
  process.exit(64);
}

const ctx = await untilReady('catalog', () => createContext(config, { log }), log);
warnAboutKeys(ctx);
let server: Server | undefined;
let workers: Supervisor | undefined;
let reconciler: Reconciler | undefined;
let loadLoops: LoadLoops | undefined;
let capture: CaptureLoop | undefined;

if (role === 'all' || role === 'api') {
  await ensureAdminKey(ctx);
  const app = createApp(ctx);
  server = app.listen(config.port, config.host, () =>
    log.info({ port: config.port, host: config.host }, 'wedvault API listening'),
  );
}
if (role === 'all' || role === 'worker') {
  workers = superviseWorkers(ctx, { queues, concurrency, lockDurationMs: config.jobLockMs });
  log.info({ queues, concurrency }, 'workers started');
  // continuous capture for point-in-time recovery: one worker process per source holds its lease
  if (config.sources.postgres.pitr.enabled) capture = startCapture(ctx);
}
if (role === 'all' || role === 'scheduler') await installSchedules(ctx);
// the SLA monitor alerts once per breach across scheduler processes (its state is in Redis)
const sla =
  role === 'all' || role === 'scheduler'
    ? startSlaMonitor(ctx, { everyMs: config.scheduling.planEveryMinutes * 60_000 })
    : undefined;
// a scheduler alone also reconciles: it is what puts back the schedules an emptied Redis lost
if (role !== 'api') {
  reconciler = startReconciler(ctx, { everyMs: config.reconcileMs, staleMs: config.jobLockMs });
  loadLoops = startLoadLoops(ctx); // aging sweep and event triggers, one process at a time
}

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down: finishing in-flight jobs');
  server?.close();
  sla?.stop();
  await reconciler?.stop();
  await loadLoops?.stop();
  await capture?.stop();
  await workers?.stop();
  await closeCeremonyPools();
  await ctx.close();
  log.info('stopped');
  process.exit(0);
}
// A shutdown that fails part-way must still end the process: in-flight jobs return via their locks.
function stop(signal: string): void {
  shutdown(signal).catch((err: unknown) => {
    log.error({ err }, 'shutdown failed; exiting');
    process.exit(EXIT_SOFTWARE);
  });
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
