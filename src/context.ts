/** The long-lived parts a process needs (config, logger, catalog, queues, stores), built once and passed down. */
import type { Config } from './config/index.js';
import { registerTarget } from './catalog/targets.js';
import { createPool, ensureDatabase, type Db } from './catalog/db.js';
import { migrate } from './catalog/migrate.js';
import { createLogger, type Logger } from './log.js';
import { createQueues, type QueueContext } from './queues/connection.js';
import { createStorage } from './storage/factory.js';
import type { Storage } from './storage/types.js';

export interface AppContext {
  config: Config;
  log: Logger;
  db: Db;
  queues: QueueContext;
  storages: Map<string, Storage>;
  storage(name: string): Storage;
  close(): Promise<void>;
}

export interface ContextOptions {
  log?: Logger;
  /** Apply catalog migrations (default true). */
  migrate?: boolean;
}

export async function createContext(config: Config, opts: ContextOptions = {}): Promise<AppContext> {
  const log = opts.log ?? createLogger(config.logLevel);
  await ensureDatabase(config.databaseUrl);
  const db = createPool(config.databaseUrl, 10, (err) =>
    log.warn({ err }, 'catalog connection closed by the server while idle; the pool opens a new one'),
  );
  if (opts.migrate !== false) await migrate(db);
  // Redis errors repeat every reconnect attempt while it is away: one line a second at most.
  let lastRedisLog = 0;
  const queues = createQueues(
    config.redisUrl,
    config.redisPrefix,
    { attempts: config.jobAttempts, backoffMs: config.jobBackoffMs },
    (err, source) => {
      if (Date.now() - lastRedisLog < 1000) return;
      lastRedisLog = Date.now();
      log.warn({ err: err.message, source }, 'Redis unavailable; reconnecting');
    },
  );
  // Every process shares each target's limits through Redis (src/storage/shared-limit.ts).
  const shared = {
    redis: queues.connection,
    prefix: queues.prefix,
    onBypass: (err: unknown) =>
      log.warn({ err }, 'Redis did not answer: target limits are this process’s own until it does'),
  };
  const storages = new Map<string, Storage>();
  for (const t of config.targets) {
    storages.set(t.name, createStorage(t, config.credentialsEnv, { shared }));
    await registerTarget(db, t.name, t.type, t.labels);
  }
  return {
    config,
    log,
    db,
    queues,
    storages,
    storage(name) {
      const s = storages.get(name);
      if (!s) throw new Error(`unknown target "${name}"`);
      return s;
    },
    async close() {
      await queues.close();
      await db.end();
    },
  };
}
