/** The target side of a PostgreSQL restore: database creation and refusal, psql, post-data splitting, FK order. */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { ConflictError, FatalError, NotFoundError } from '../../errors.js';
import { childConnection } from './catalog.js';

export function databaseName(url: string): string {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  if (!name) throw new FatalError('the target database URL names no database');
  return name;
}

/** Runs fn on a connection to the target server's `postgres` maintenance database. */
async function admin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const u = new URL(url);
  u.pathname = '/postgres';
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function userTableCount(url: string): Promise<number> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema')
          AND n.nspname NOT LIKE 'pg\\_%'`,
    );
    return rows[0]!.n;
  });
}

export interface PrepareOptions {
  /** Drop and recreate a database that already holds tables. */
  overwrite: boolean;
  /** Create the database when it does not exist. */
  create: boolean;
  /** A database with tables is fine as it is (one wedding goes into a live schema). */
  keepExisting: boolean;
}

/**
 * Makes the target ready: `live` when it holds tables and may keep them, else empty (the schema
 * must be applied), `created` when this call created it (so a refused restore can drop it again).
 */
export async function prepareDatabase(url: string, o: PrepareOptions): Promise<'live' | 'empty' | 'created'> {
  const name = databaseName(url);
  const exists = await admin(
    url,
    async (c) => ((await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount ?? 0) > 0,
  );
  if (!exists && !o.create) throw new NotFoundError(`database "${name}" does not exist`);
  if (exists && (await userTableCount(url)) > 0) {
    if (o.keepExisting) return 'live';
    if (!o.overwrite) {
      throw new ConflictError(
        `database "${name}" already holds tables; refusing to overwrite it without --overwrite`,
        { details: { database: name } },
      );
    }
    await admin(url, (c) => c.query(`DROP DATABASE ${c.escapeIdentifier(name)} WITH (FORCE)`));
  }
  return admin(url, async (c) => {
    const again = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (again.rowCount) return 'empty';
    await c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`);
    return 'created';
  });
}

/** Drops a database a refused restore created. */
export async function dropCreated(url: string): Promise<void> {
  await admin(url, (c) =>
    c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(databaseName(url))} WITH (FORCE)`),
  );
}

/** Runs SQL text through psql, stopping at the first error (pg_dump output may hold psql meta-commands). */
export async function psql(target: string, sql: Readable | string): Promise<void> {
  const { url, env } = childConnection(target);
  const child = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url], {
    stdio: ['pipe', 'ignore', 'pipe'],
    env,
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  try {
    if (typeof sql === 'string') child.stdin.end(sql);
    else await pipeline(sql, child.stdin);
  } catch (err) {
    child.kill();
    await exited.catch(() => undefined);
    // psql's own complaint says more than the broken pipe
    if (stderr) throw new FatalError(`psql failed: ${stderr.trim().slice(0, 2000)}`, { cause: err });
    throw err;
  }
  const code = await exited;
  if (code !== 0) throw new FatalError(`psql failed (${code}): ${stderr.trim().slice(0, 2000)}`);
}

/** SQL without psql meta-commands (pg_dump's \restrict guard), for a plain connection. */
const withoutMetaCommands = (sql: string) =>
  sql
    .split('\n')
    .filter((l) => !l.startsWith('\\'))
    .join('\n');

/**
 * pg_dump's post-data as independent statements: indexes and non-foreign-key constraints can be
 * built in parallel; foreign keys need them first; the rest (triggers, rules…) comes last.
 */
export function splitPostData(sql: string): {
  header: string;
  parallel: string[];
  foreignKeys: string[];
  rest: string[];
} {
  const parts = withoutMetaCommands(sql).split(/\n(?=--\n-- Name: )/);
  const header = parts[0]!.includes('-- Name: ') ? '' : parts.shift()!;
  const parallel: string[] = [];
  const foreignKeys: string[] = [];
  const rest: string[] = [];
  for (const p of parts) {
    const type = /; Type: ([A-Z ]+);/.exec(p)?.[1] ?? '';
    if (type === 'FK CONSTRAINT') foreignKeys.push(p);
    else if (type === 'INDEX' || type === 'CONSTRAINT') parallel.push(p);
    else rest.push(p);
  }
  return { header, parallel, foreignKeys, rest };
}

/** Runs statements over `parallel` connections, each first running the session header. */
export async function runParallel(
  url: string,
  header: string,
  statements: string[],
  parallel: number,
): Promise<void> {
  const queue = [...statements];
  await Promise.all(
    Array.from({ length: Math.min(parallel, queue.length) }, () =>
      withClient(url, async (c) => {
        await c.query(header);
        for (let s = queue.shift(); s !== undefined; s = queue.shift()) await c.query(s);
      }),
    ),
  );
}

/**
 * Applies pg_dump's pre-data. Privileges (GRANT, REVOKE, ALTER DEFAULT PRIVILEGES) come last, one
 * object at a time: they name roles, which live in the server rather than the database, and a role
 * the target server lacks skips that grant (as pg_restore reports and goes on)
 * instead of failing the restore. Returns the grants skipped, each with its object and why.
 */
export async function applyPreData(url: string, sql: string): Promise<string[]> {
  const parts = sql.split(/\n(?=--\n-- Name: )/);
  const isAcl = (p: string) => /; Type: (?:DEFAULT )?ACL;/.test(p);
  const acls = parts.filter(isAcl);
  await psql(url, parts.filter((p) => !isAcl(p)).join('\n'));
  if (acls.length === 0) return [];
  const header = parts[0]!.includes('-- Name: ') ? '' : withoutMetaCommands(parts[0]!);
  const skipped: string[] = [];
  await withClient(url, async (c) => {
    await c.query(header);
    for (const acl of acls) {
      const name = /-- Name: ([^;]*);/.exec(acl)?.[1] ?? 'an object';
      // statement by statement (pg_dump writes one a line), so the grants to roles that exist stay
      for (const statement of withoutMetaCommands(acl).split(/;\n/)) {
        try {
          await c.query(statement);
        } catch (err) {
          // 42704 undefined_object: here, a role that does not exist on this server
          if (!(err instanceof pg.DatabaseError) || err.code !== '42704') throw err;
          skipped.push(`${name}: ${err.message}`);
        }
      }
    }
  });
  return skipped;
}
