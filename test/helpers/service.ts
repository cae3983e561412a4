/** Test harness: a real catalog database, a Redis prefix of its own and temp directories per test file. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/config/index.js';
import { createContext, type AppContext } from '../../src/context.js';
import { createLogger } from '../../src/log.js';
import { getOperation, type Operation } from '../../src/catalog/operations.js';

export const PG_ADMIN_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export function dbUrl(name: string): string {
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function dropDatabase(name: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    // a database with a replication slot cannot be dropped, even WITH (FORCE)
    await c.query(
      `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`,
      [name],
    );
    await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await c.end();
  }
}

export async function clearRedisPrefix(prefix: string): Promise<void> {
  const r = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `{${prefix}}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}

export interface TestService {
  env: Record<string, string>;
  config: Config;
  ctx: AppContext;
  dir: string;
  catalogDb: string;
  cleanup(): Promise<void>;
}

/** Everything a test needs to run the service's parts in-process (and child processes with `env`). */
export async function createTestService(extraEnv: Record<string, string> = {}): Promise<TestService> {
  const id = randomBytes(4).toString('hex');
  const dir = mkdtempSync(path.join(tmpdir(), `wedvault-${id}-`));
  const catalogDb = `wv_test_catalog_${id}`;
  const env: Record<string, string> = {
    DATABASE_URL: dbUrl(catalogDb),
    REDIS_URL,
    WEDVAULT_REDIS_PREFIX: `wvtest-${id}`,
    WEDVAULT_DATA_DIR: path.join(dir, 'data'),
    WEDVAULT_FILES_DIR: path.join(dir, 'files'),
    WEDVAULT_KEY_FILE: path.join(dir, 'keys', 'master.key'),
    WEDVAULT_MASTER_KEY: randomBytes(32).toString('hex'),
    WEDVAULT_ADMIN_KEY: `test-admin-${randomBytes(12).toString('hex')}`,
    SOURCE_DATABASE_URL: dbUrl(`wv_test_source_${id}`),
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...extraEnv,
  };
  const config = loadConfig({ ...process.env, ...env });
  const ctx = await createContext(config, { log: createLogger(env.LOG_LEVEL) });
  return {
    env,
    config,
    ctx,
    dir,
    catalogDb,
    async cleanup() {
      await ctx.close();
      await clearRedisPrefix(env.WEDVAULT_REDIS_PREFIX!);
      await dropDatabase(catalogDb);
      await dropDatabase(`wv_test_source_${id}`);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function waitFor<T>(
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Waits for a backup operation to complete; a failed one fails the test with its recorded error. */
export async function waitForOperation(
  ctx: AppContext,
  operationId: string,
  timeoutMs = 30_000,
): Promise<Operation> {
  return waitFor(async () => {
    const o = await getOperation(ctx.db, operationId);
    if (o?.state === 'failed') throw new Error(JSON.stringify(o.error));
    return o?.state === 'completed' && o;
  }, timeoutMs);
}
