/** Connection pool for the catalog database, created on first use when it does not exist yet. */
import pg from 'pg';

export type Db = pg.Pool;

/** Creates the database named in url if missing, via the server's `postgres` maintenance database. */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  if (!name) return;
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) {
      try {
        await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
      } catch (err) {
        // Another process may have created it between the check and the create: PostgreSQL says
        // so as 42P04, or, when both creates ran at once, as a unique violation on pg_database.
        const code = (err as { code?: string }).code;
        if (code !== '42P04' && code !== '23505') throw err;
      }
    }
  } finally {
    await client.end();
  }
}

/**
 * The server may cut an idle pooled connection (a restart, an administrator, a dropped database):
 * the pool then drops that connection and reports the error here. Without a listener the report
 * would be an uncaught exception that ends the process.
 */
export function createPool(url: string, max = 10, onIdleError: (err: Error) => void = () => undefined): Db {
  const pool = new pg.Pool({ connectionString: url, max });
  pool.on('error', onIdleError);
  return pool;
}

/** The pool or one of its clients (inside a transaction): catalog functions accept either. */
export type Queryable = pg.Pool | pg.PoolClient;

/** Runs fn in a transaction on one pooled client: committed when fn resolves, rolled back when it throws. */
export async function transaction<T>(db: Db, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** The readiness probe's question: does the catalog answer at all. */
export async function pingCatalog(db: Db): Promise<void> {
  await db.query('SELECT 1');
}
