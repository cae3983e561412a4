/**
 * Restores a PostgreSQL tree: schema (pre-data), rows with parallel COPY FROM, sequences, then
 * indexes and constraints (post-data) built in parallel. One wedding can be restored alone.
 */
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { ConflictError, FatalError } from '../errors.js';
import type { ContentReader } from './api.js';
import { qualified } from './sources/postgres-catalog.js';
import type { PgTable, PgTree, Segment } from './sources/postgres.js';

export type { PgTree } from './sources/postgres.js';

export interface PostgresRestoreOptions {
  targetUrl?: string | undefined;
  /** Only this tenant's rows. */
  wedding?: string | undefined;
  /** Replace a database that already holds tables (it is dropped and created anew). */
  overwrite?: boolean;
  parallel?: number;
  /** Write SQL (COPY blocks) here instead of into a database; wedding restores only. */
  asSql?: Writable | undefined;
}

export interface PostgresRestoreResult {
  tables: number;
  rows: number;
}

function databaseName(url: string): string {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  if (!name) throw new FatalError('the target database URL names no database');
  return name;
}

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

async function userTableCount(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg\\_%'`,
    );
    return rows[0]!.n;
  } finally {
    await c.end();
  }
}

/** Creates the database when missing; refuses one holding tables unless overwrite. Returns whether it is empty. */
async function prepareDatabase(url: string, overwrite: boolean, allowExisting: boolean): Promise<boolean> {
  const name = databaseName(url);
  const exists = await admin(
    url,
    async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount,
  );
  if (exists && (await userTableCount(url)) > 0) {
    if (allowExisting && !overwrite) return false;
    if (!overwrite) {
      throw new ConflictError(
        `database "${name}" already holds tables; refusing to overwrite it without --overwrite`,
      );
    }
    await admin(url, (c) => c.query(`DROP DATABASE ${c.escapeIdentifier(name)} WITH (FORCE)`));
  }
  if (!exists || overwrite) {
    await admin(url, async (c) => {
      const again = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      if (!again.rowCount) await c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`);
    });
  }
  return true;
}

/** Runs SQL text through psql, stopping at the first error. */
async function psql(url: string, sql: Readable | string): Promise<void> {
  const child = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (typeof sql === 'string') child.stdin.end(sql);
  else await pipeline(sql, child.stdin);
  const code = await exited;
  if (code !== 0) throw new FatalError(`psql failed (${code}): ${stderr.trim().slice(0, 2000)}`);
}

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
  // psql meta-commands (pg_dump's \\restrict guard) mean nothing to a plain connection
  const plain = sql
    .split('\n')
    .filter((l) => !l.startsWith('\\'))
    .join('\n');
  const parts = plain.split(/\n(?=--\n-- Name: )/);
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

async function runParallel(
  url: string,
  header: string,
  statements: string[],
  parallel: number,
): Promise<void> {
  const queue = [...statements];
  await Promise.all(
    Array.from({ length: Math.min(parallel, queue.length) }, async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(header);
        for (let s = queue.shift(); s !== undefined; s = queue.shift()) await c.query(s);
      } finally {
        await c.end();
      }
    }),
  );
}

const PREFETCH = 32;
const SMALL_SEGMENT = 1 << 20;

async function collect(reader: ContentReader, seg: Segment): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of reader.read(seg.ref)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function columnList(t: PgTable): string {
  return t.columns.map((c) => pg.escapeIdentifier(c.name)).join(', ');
}

async function copySegments(
  client: pg.Client,
  reader: ContentReader,
  t: PgTable,
  segments: Segment[],
): Promise<void> {
  if (segments.length === 0) return;
  const sink = client.query(copyFrom(`COPY ${qualified(t)} (${columnList(t)}) FROM STDIN`));
  await pipeline(async function* () {
    // Most segments are one wedding's few rows: fetch many ahead, in order, so reads overlap.
    const ahead: (Promise<Buffer> | Segment)[] = [];
    let next = 0;
    const fill = () => {
      while (ahead.length < PREFETCH && next < segments.length) {
        const seg = segments[next++]!;
        if (seg.ref.size > SMALL_SEGMENT) ahead.push(seg);
        else {
          const p = collect(reader, seg);
          p.catch(() => undefined); // awaited below, in order
          ahead.push(p);
        }
      }
    };
    fill();
    while (ahead.length > 0) {
      const item = ahead.shift()!;
      if (item instanceof Promise) yield await item;
      else for await (const chunk of reader.read(item.ref)) yield chunk as Buffer;
      fill();
    }
  }, sink);
}

export async function restorePostgres(
  reader: ContentReader,
  tree: PgTree,
  opts: PostgresRestoreOptions,
): Promise<PostgresRestoreResult> {
  // One wedding into an empty database also needs the shared (platform) tables its rows refer to.
  let withPlatform = false;
  const pick = (t: PgTable) =>
    opts.wedding === undefined || (withPlatform && t.scopeKind === 'platform')
      ? t.segments
      : t.segments.filter((s) => s.tenant === opts.wedding && t.scopeKind === 'wedding');
  let tables = tree.tables.filter((t) => pick(t).length > 0);
  const countRows = () => tables.reduce((n, t) => n + pick(t).reduce((m, s) => m + s.rows, 0), 0);

  if (opts.asSql) {
    for (const t of tables) {
      opts.asSql.write(`COPY ${qualified(t)} (${columnList(t)}) FROM stdin;\n`);
      for (const seg of pick(t)) for await (const chunk of reader.read(seg.ref)) opts.asSql.write(chunk);
      opts.asSql.write('\\.\n\n');
    }
    return { tables: tables.length, rows: countRows() };
  }
  if (!opts.targetUrl) throw new FatalError('restore needs a target database or an SQL output');
  const url = opts.targetUrl;
  const parallel = Math.max(1, opts.parallel ?? 2);
  // A single wedding may go into a database that already has the schema; a whole restore never may.
  const empty = await prepareDatabase(url, opts.overwrite ?? false, opts.wedding !== undefined);
  if (empty) await psql(url, reader.read(tree.schema.preData));
  if (empty && opts.wedding !== undefined) {
    withPlatform = true;
    tables = tree.tables.filter((t) => pick(t).length > 0);
  }

  const queue = [...tables].sort((a, b) => pick(b).length - pick(a).length);
  await Promise.all(
    Array.from({ length: Math.min(parallel, queue.length) }, async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        for (let t = queue.shift(); t; t = queue.shift()) await copySegments(c, reader, t, pick(t));
      } finally {
        await c.end();
      }
    }),
  );

  if (empty) {
    const seqs = tree.sequences.map(
      (s) => `SELECT pg_catalog.setval(${pg.escapeLiteral(s.name)}, ${BigInt(s.value)}, ${s.isCalled});`,
    );
    if (seqs.length) await psql(url, seqs.join('\n'));
    const post = splitPostData((await readText(reader, tree)).toString('utf8'));
    await runParallel(url, post.header, post.parallel, parallel);
    await runParallel(url, post.header, post.foreignKeys, parallel);
    if (post.rest.length) await psql(url, post.header + '\n' + post.rest.join('\n'));
  }
  return { tables: tables.length, rows: countRows() };
}

async function readText(reader: ContentReader, tree: PgTree): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of reader.read(tree.schema.postData)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}
