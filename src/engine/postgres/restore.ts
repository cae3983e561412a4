/**
 * Restores a PostgreSQL tree: schema (pre-data), rows with parallel COPY FROM, sequences, then
 * indexes and constraints (post-data) built in parallel. One wedding can be restored alone, into a
 * new database, into a live one (in one transaction), or as an SQL script.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { ConflictError, NotFoundError, ValidationError } from '../../errors.js';
import { isErased, weddingScope, type ContentReader, type ContentRef } from '../api.js';
import {
  applyPreData,
  dropCreated,
  prepareDatabase,
  psql,
  runParallel,
  splitPostData,
  withClient,
} from './restore-target.js';
import { foreignKeyOrder, qualified } from './catalog.js';
import type { PgTable, PgTree, Segment } from '../tree.js';
import { refreshStatements } from './matviews.js';
import { collect, picked, tableBytes, type Pick } from './table-rows.js';
import { settleReferences, type ReferenceReport } from './references.js';
import { rowsOf, tenantJoins } from './tenant-rows.js';

export interface PostgresRestoreOptions {
  targetUrl?: string | undefined;
  /** Only this tenant's rows (plus, into a new database, the shared tables they refer to). */
  wedding?: string | undefined;
  /** Create the target database when missing (default true). */
  createDatabase?: boolean;
  /**
   * Whole database: drop and recreate a target that holds tables. One wedding into a live
   * database: replace that wedding's rows. Default false: either case is a ConflictError.
   */
  overwrite?: boolean;
  /** Connections for COPY FROM and for index builds (default 2). */
  parallel?: number;
  /** Write an SQL script (psql syntax) here instead of restoring into a database. */
  asSql?: Writable | undefined;
  /** Scopes of the erasure ledger: their segments are left out, whatever the point holds. */
  erased?: ReadonlySet<string> | undefined;
}

export interface PostgresRestoreResult {
  tables: number;
  rows: number;
  /** One wedding: references to rows the target does not hold, set to NULL (references.ts). */
  nulledReferences?: ReferenceReport[];
  /** Objects whose privileges name a role the target server lacks, so were not granted (why, each). */
  skippedGrants?: string[];
}

const columnList = (t: PgTable) => t.columns.map((c) => pg.escapeIdentifier(c.name)).join(', ');
const copyStatement = (t: PgTable, into = qualified(t)) => `COPY ${into} (${columnList(t)}) FROM STDIN`;

/** A table's own rows in the target (rowsOf), whether it is partitioned as the tree says. */
const relationOf = (tree: PgTree, t: { schema: string; name: string }) =>
  rowsOf({
    ...t,
    partitioned: tree.tables.find((x) => x.schema === t.schema && x.name === t.name)?.partitioned,
  });

/** Joins small pieces into writes of about `size` bytes: one CopyData message per segment costs PostgreSQL and the socket more than the bytes. */
async function* coalesce(pieces: AsyncIterable<Buffer>, size = 256 * 1024): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let length = 0;
  for await (const p of pieces) {
    if (p.length >= size && length === 0) {
      yield p;
      continue;
    }
    parts.push(p);
    length += p.length;
    if (length >= size) {
      yield Buffer.concat(parts, length);
      parts = [];
      length = 0;
    }
  }
  if (length > 0) yield Buffer.concat(parts, length);
}

/**
 * COPYs a table's picked segments; the rows it sent (0, and no COPY, when none are picked). With
 * `freeze`, into a table this restore made: emptied in the same transaction and loaded with COPY
 * FREEZE, so its rows are written frozen and all-visible (the index builds, foreign-key checks and
 * first reads that follow need no commit-status lookup per row). Partitioned tables load without it.
 */
async function copySegments(
  c: pg.ClientBase,
  reader: ContentReader,
  t: PgTable,
  pick: Pick,
  freeze = false,
  into = qualified(t),
): Promise<number> {
  const segs = await picked(reader, t, pick);
  if (!segs) return 0;
  const counted = { rows: 0 };
  const copy = (options = '') =>
    pipeline(
      coalesce(tableBytes(reader, t, segs, counted)),
      c.query(copyFrom(`${copyStatement(t, into)}${options}`)),
    );
  const kind = async () =>
    (
      await c.query<{ relkind: string }>('SELECT relkind FROM pg_catalog.pg_class WHERE oid = $1::regclass', [
        qualified(t),
      ])
    ).rows[0]?.relkind;
  if (!freeze || (await kind()) !== 'r') {
    await copy();
    return counted.rows;
  }
  await c.query('BEGIN');
  try {
    await c.query(`TRUNCATE ONLY ${qualified(t)}`);
    await copy(' WITH (FREEZE)');
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  return counted.rows;
}

/** Tables that received rows and how many rows in all. */
function restored(counts: Map<PgTable, number>): PostgresRestoreResult {
  let tables = 0;
  let rows = 0;
  for (const n of counts.values()) {
    if (n > 0) tables++;
    rows += n;
  }
  return { tables, rows };
}

/** An identifier as pg_dump writes it: quoted only when it has to be. */
function dumpIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : pg.escapeIdentifier(name);
}

/** The table an index or constraint statement of pg_dump's post-data belongs to, as pg_dump names it. */
function statementTable(sql: string): string | undefined {
  const body = sql.replace(/^--.*$/gm, '');
  return (
    /CREATE (?:UNIQUE )?INDEX \S+ ON (?:ONLY )?(\S+) USING/.exec(body)?.[1] ??
    /ALTER TABLE (?:ONLY )?(\S+)\s+ADD CONSTRAINT/.exec(body)?.[1]
  );
}

/** The referencing and the referenced table of a foreign-key statement of pg_dump's post-data. */
function foreignKeyTables(sql: string): [string, string] | undefined {
  const body = sql.replace(/^--.*$/gm, '');
  const m = /ALTER TABLE (?:ONLY )?(\S+)\s+ADD CONSTRAINT \S+ FOREIGN KEY \(.*?\) REFERENCES (\S+?)\(/s.exec(
    body,
  );
  return m ? [m[1]!, m[2]!] : undefined;
}

/** Session settings of the restore connections: index builds sort in memory, commits do not wait. */
const RESTORE_SESSION = `SET maintenance_work_mem = '256MB'; SET synchronous_commit = off;`;

/**
 * One unit of a fresh restore's work on one connection, with the tables it locks: `exclusive`
 * when its lock conflicts with any other on those tables (COPY, ALTER TABLE … ADD CONSTRAINT,
 * ADD FOREIGN KEY), else shared (CREATE INDEX, which others of its kind run beside).
 */
type Job =
  | { kind: 'load'; table: PgTable; tables: PgTable[]; exclusive: true }
  | { kind: 'build' | 'fk'; sql: string; table: PgTable; tables: PgTable[]; exclusive: boolean };

/**
 * Where each post-data statement runs: a table's index and constraint builds after its rows, a
 * foreign key as soon as both its tables are built (`early`), the rest at the end.
 */
function placePostData(post: ReturnType<typeof splitPostData>, tables: PgTable[], deferForeignKeys: boolean) {
  const byName = new Map(
    tables.map((t) => [`${dumpIdent(t.schema)}.${dumpIdent(t.name)}`, t] as [string, PgTable]),
  );
  const builds = new Map<PgTable, Job[]>();
  const unplaced: string[] = [];
  for (const sql of post.parallel) {
    const table = byName.get(statementTable(sql) ?? '');
    if (!table) {
      unplaced.push(sql);
      continue;
    }
    const exclusive = !/^CREATE (?:UNIQUE )?INDEX /m.test(sql);
    builds.set(table, [
      ...(builds.get(table) ?? []),
      { kind: 'build', sql, table, tables: [table], exclusive },
    ]);
  }
  // A foreign key waits for both tables' rows and indexes. Should any index or constraint have no
  // known table, the key it needs may be among them: every foreign key then waits for the end.
  const early: Job[] = [];
  const late: string[] = [];
  for (const sql of post.foreignKeys) {
    const [from, to] = (!deferForeignKeys && unplaced.length === 0 && foreignKeyTables(sql)) || [];
    const table = byName.get(from ?? '');
    const referenced = byName.get(to ?? '');
    if (table && referenced)
      early.push({ kind: 'fk', sql, table, tables: [table, referenced], exclusive: true });
    else late.push(sql);
  }
  return { builds, unplaced, early, late };
}

const sqlOf = async (reader: ContentReader, ref: ContentRef) => (await collect(reader, ref)).toString('utf8');

/** A load job per table, most bytes first, so the connections finish together. */
function loadJobs(tables: PgTable[]): Job[] {
  const size = (t: PgTable) => t.bytes ?? (t.segments ?? []).reduce((n, s) => n + s.ref.size, 0);
  return [...tables]
    .sort((a, b) => size(b) - size(a))
    .map((table) => ({ kind: 'load', table, tables: [table], exclusive: true }));
}

/**
 * Into a new (or emptied) database: schema, then rows over parallel connections; a table's indexes
 * and constraints are built as soon as its rows are in, and a foreign key is checked as soon as
 * both its tables are built, on whichever connection is free, while other tables still load (as
 * pg_restore does). A job whose lock would wait on one running waits in the queue instead, so no
 * connection sits blocked. Then sequences and the rest of post-data.
 */
async function restoreFresh(
  reader: ContentReader,
  tree: PgTree,
  url: string,
  pick: Pick,
  parallel: number,
  /** Some rows are left out (another wedding's, an erased scope's): references to them are settled. */
  partial = false,
) {
  const skippedGrants = await applyPreData(url, await sqlOf(reader, tree.schema.preData));
  const post = splitPostData(await sqlOf(reader, tree.schema.postData));
  const tables = tree.tables.filter((t) => pick(t) !== null);
  // one wedding's rows may name rows of another: settled before any foreign key is added
  const { builds, unplaced, early, late } = placePostData(post, tables, partial);
  const queue = loadJobs(tables);
  const unbuilt = new Map(tables.map((t) => [t, 1 + (builds.get(t)?.length ?? 0)])); // load + builds
  const held = new Map<PgTable, { shared: number; exclusive: boolean }>();
  const hold = (job: Job, delta: 1 | -1) => {
    for (const t of job.tables) {
      const h = held.get(t) ?? { shared: 0, exclusive: false };
      if (job.exclusive) h.exclusive = delta > 0;
      else h.shared += delta;
      held.set(t, h);
    }
  };
  const free = (job: Job) =>
    job.tables.every((t) => {
      const h = held.get(t);
      return !h || (!h.exclusive && (!job.exclusive || h.shared === 0));
    });
  /** Queues what a finished job makes ready: a loaded table's builds, a built table's foreign keys. */
  const finished = (job: Job) => {
    if (job.kind === 'fk') return;
    // builds go before the tables still waiting, as pg_restore does: they overlap the other
    // connections' loads instead of all running at the end
    if (job.kind === 'load') queue.unshift(...(builds.get(job.table) ?? []));
    const left = unbuilt.get(job.table)! - 1;
    unbuilt.set(job.table, left);
    if (left > 0) return;
    for (let i = early.length - 1; i >= 0; i--) {
      const fk = early[i]!;
      if (fk.tables.every((t) => unbuilt.get(t) === 0)) queue.unshift(...early.splice(i, 1));
    }
  };
  const counts = new Map<PgTable, number>();
  let running = 0;
  let failed = false;
  const waiting: (() => void)[] = [];
  const wakeAll = () => waiting.splice(0).forEach((w) => w());
  const next = async (): Promise<Job | undefined> => {
    for (;;) {
      if (failed) return undefined;
      const i = queue.findIndex(free);
      if (i >= 0) {
        const [job] = queue.splice(i, 1);
        hold(job!, 1);
        running++;
        return job;
      }
      // nothing queued can start; a running job will free a lock or queue more
      if (running === 0) return undefined;
      await new Promise<void>((resolve) => waiting.push(resolve));
    }
  };
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(parallel, tables.length)) }, () =>
      withClient(url, async (c) => {
        await c.query(post.header);
        await c.query(RESTORE_SESSION);
        for (let job = await next(); job; job = await next()) {
          try {
            if (job.kind === 'load')
              counts.set(job.table, await copySegments(c, reader, job.table, pick, true));
            else await c.query(job.sql);
            finished(job);
          } catch (err) {
            failed = true; // the other connections stop at their next job
            throw err;
          } finally {
            hold(job, -1);
            running--;
            wakeAll();
          }
        }
      }),
    ),
  );
  const settle = partial ? () => settleFresh(url, tree) : undefined;
  const nulled = await finishFresh(url, tree, post, { unplaced, late }, parallel, settle);
  return {
    ...restored(counts),
    ...(skippedGrants.length ? { skippedGrants } : {}),
    ...(nulled.length ? { nulledReferences: nulled } : {}),
  };
}

/** The primary key of a table of the tree (empty when it has none or is not in it). */
const keyOf = (tree: PgTree) => (t: { schema: string; name: string }) =>
  tree.tables.find((x) => x.schema === t.schema && x.name === t.name)?.primaryKey ?? [];

/** Only tenants' rows are ever left out: only the keys from or to a tenant's table can dangle. */
async function settleFresh(url: string, tree: PgTree): Promise<ReferenceReport[]> {
  const partial = new Set(tree.tables.filter((t) => t.scopeKind !== 'platform').map((t) => qualified(t)));
  const keys = (tree.foreignKeys ?? []).filter(
    (k) => partial.has(qualified(k.table)) || partial.has(qualified(k.references)),
  );
  const relation = (t: { schema: string; name: string }) => relationOf(tree, t);
  return withClient(url, (c) => settleReferences(c, keys, (t) => [relation(t)], relation, keyOf(tree)));
}

const setvals = (tree: PgTree) =>
  tree.sequences
    .map((q) => `SELECT pg_catalog.setval(${pg.escapeLiteral(q.name)}, ${BigInt(q.value)}, ${q.isCalled});\n`)
    .join('');

/**
 * After the rows: the post-data no table claimed, sequences, the foreign keys left, the rest
 * (triggers come only now, so the load fired none), then the materialized views the source had
 * populated, refreshed from the restored rows.
 */
async function finishFresh(
  url: string,
  tree: PgTree,
  post: ReturnType<typeof splitPostData>,
  left: { unplaced: string[]; late: string[] },
  parallel: number,
  settle?: () => Promise<ReferenceReport[]>,
): Promise<ReferenceReport[]> {
  await runParallel(url, post.header, left.unplaced, parallel);
  if (tree.sequences.length) await psql(url, setvals(tree));
  const nulled = settle ? await settle() : [];
  // Keys added outside the scheduler's table locks (all of them, when references were settled)
  // go one at a time: two keys between the same tables in opposite directions (a ↔ b), added
  // at once, each lock one table and wait on the other: a deadlock.
  await runParallel(url, post.header, left.late, settle ? 1 : parallel);
  if (post.rest.length) await psql(url, post.header + '\n' + post.rest.join('\n'));
  const refresh = refreshStatements(tree.materializedViews);
  if (refresh) await psql(url, post.header + '\n' + refresh);
  return nulled;
}

/**
 * Deletes one wedding's rows of a table: by its tenant column, or for a table that reaches the
 * wedding through foreign keys, the rows whose path ends at the wedding (run children first, while
 * the path's rows are still there). The number of rows deleted.
 */
async function deleteWedding(c: pg.ClientBase, tree: PgTree, t: PgTable, wedding: string): Promise<number> {
  const rel = relationOf(tree, t);
  if (t.tenantColumn) {
    // cast the parameter, not the column, so the tenant index serves the delete
    const type = t.columns.find((x) => x.name === t.tenantColumn)!.type;
    const del = await c.query(
      `DELETE FROM ${rel} WHERE ${pg.escapeIdentifier(t.tenantColumn)} = CAST($1 AS ${type})`,
      [wedding],
    );
    return del.rowCount ?? 0;
  }
  const via = tenantJoins(t.tenantVia!);
  // the tenant's type is the column's at the end of the path (a key's columns share their types)
  const end = t.tenantVia!.path.at(-1)!.to;
  const type = tree.tables
    .find((x) => x.schema === end.schema && x.name === end.name)
    ?.columns.find((x) => x.name === t.tenantVia!.column)?.type;
  const match = type ? `${via.expr} = CAST($1 AS ${type})` : `${via.expr}::text = $1`;
  const del = await c.query(
    `DELETE FROM ${rel} d USING (SELECT r.tableoid AS o, r.ctid AS c FROM ${rel} r${via.joins}
       WHERE ${match}) x WHERE d.tableoid = x.o AND d.ctid = x.c`,
    [wedding],
  );
  return del.rowCount ?? 0;
}

/**
 * One wedding into a database that has the schema, all or nothing in one transaction: the
 * wedding's rows are deleted (children first), its backed-up rows staged in temporary tables, the
 * references they make to rows the database does not hold settled (references.ts), then inserted
 * in foreign-key order.
 */
async function restoreIntoLive(
  reader: ContentReader,
  tree: PgTree,
  url: string,
  wedding: string,
  /** The wedding's segments less those of erased (or expired class) scopes. */
  ofWedding: (s: Segment) => boolean,
  overwrite: boolean,
) {
  const weddingTables = tree.tables.filter((t) => t.scopeKind === 'wedding');
  const pick: Pick = () => ofWedding;
  const counts = new Map<PgTable, number>();
  return withClient(url, async (c) => {
    const order = await foreignKeyOrder(c, weddingTables);
    const stage = new Map(order.map((t, i) => [qualified(t), `pg_temp.wedvault_stage_${i}`]));
    await c.query('BEGIN');
    try {
      for (const t of [...order].reverse()) {
        if ((await deleteWedding(c, tree, t, wedding)) > 0 && !overwrite) {
          throw new ConflictError(
            `wedding ${wedding} already has rows in ${t.schema}.${t.name}; refusing to replace them without --overwrite`,
            { details: { wedding, table: `${t.schema}.${t.name}` } },
          );
        }
      }
      for (const t of order) {
        const into = stage.get(qualified(t))!;
        await c.query(
          `CREATE TEMP TABLE ${into.slice('pg_temp.'.length)} (LIKE ${qualified(t)}) ON COMMIT DROP`,
        );
        await copySegments(c, reader, t, pick, false, into);
      }
      const staged = (t: { schema: string; name: string }) => stage.get(qualified(t));
      const keys = (tree.foreignKeys ?? []).filter((k) => staged(k.table));
      const nulled = await settleReferences(
        c,
        keys,
        (t) => [relationOf(tree, t), ...(staged(t) ? [staged(t)!] : [])],
        (t) => staged(t)!,
        keyOf(tree),
      );
      for (const t of order) {
        const ins = await c.query(
          `INSERT INTO ${qualified(t)} (${columnList(t)}) OVERRIDING SYSTEM VALUE
           SELECT ${columnList(t)} FROM ${stage.get(qualified(t))!}`,
        );
        counts.set(t, ins.rowCount ?? 0);
      }
      await c.query('COMMIT');
      return { ...restored(counts), ...(nulled.length ? { nulledReferences: nulled } : {}) };
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });
}

/** An SQL script: the whole database (schema, rows, sequences, constraints) or one wedding's rows. */
async function writeSql(reader: ContentReader, tree: PgTree, out: Writable, pick: Pick, whole: boolean) {
  const write = async (b: Buffer | string) => {
    if (!out.write(b)) await once(out, 'drain');
  };
  const copyAll = async (ref: ContentRef) => {
    for await (const chunk of reader.read(ref)) await write(chunk as Buffer);
  };
  if (whole) await copyAll(tree.schema.preData);
  else await write('BEGIN;\n\n');
  const counts = new Map<PgTable, number>();
  for (const t of tree.tables) {
    const segs = await picked(reader, t, pick);
    if (!segs) continue;
    await write(`${copyStatement(t)};\n`);
    const counted = { rows: 0 };
    for await (const rows of tableBytes(reader, t, segs, counted)) await write(rows);
    counts.set(t, counted.rows);
    await write('\\.\n\n');
  }
  if (whole) {
    await write(setvals(tree));
    await copyAll(tree.schema.postData);
    await write(refreshStatements(tree.materializedViews));
  } else await write('COMMIT;\n');
  return restored(counts);
}

export async function restorePostgres(
  reader: ContentReader,
  tree: PgTree,
  opts: PostgresRestoreOptions,
): Promise<PostgresRestoreResult> {
  const { wedding } = opts;
  const erased = opts.erased ?? new Set<string>();
  const parallel = Math.max(1, opts.parallel ?? 2);
  const every = (s: Segment) => !isErased(s.scope, erased);
  const ofWedding = (s: Segment) => s.tenant === wedding && every(s);
  if (wedding !== undefined && erased.has(weddingScope(wedding)))
    throw new NotFoundError(`wedding ${wedding} was erased`, { details: { wedding } });
  const all: Pick = () => every;
  // A wedding in a new database also needs the shared tables its rows refer to, whole, and the
  // platform rows of mixed tables (those whose tenant is NULL).
  const withShared: Pick = (t) =>
    t.scopeKind !== 'wedding'
      ? every
      : (s: Segment) => (s.tenant === wedding || s.tenant === null) && every(s);
  const onlyWedding: Pick = (t) => (t.scopeKind === 'wedding' ? ofWedding : null);

  if (opts.asSql)
    return writeSql(
      reader,
      tree,
      opts.asSql,
      wedding === undefined ? all : onlyWedding,
      wedding === undefined,
    );
  if (!opts.targetUrl) throw new ValidationError('restore needs a target database or an SQL output');
  const url = opts.targetUrl;
  const create = opts.createDatabase ?? true;
  const overwrite = opts.overwrite ?? false;
  if (wedding === undefined) {
    await prepareDatabase(url, { overwrite, create, keepExisting: false });
    return restoreFresh(reader, tree, url, all, parallel, erased.size > 0);
  }
  const state = await prepareDatabase(url, { overwrite: false, create, keepExisting: true });
  if (state === 'live') return restoreIntoLive(reader, tree, url, wedding, ofWedding, overwrite);
  try {
    return await restoreFresh(reader, tree, url, withShared, parallel, true);
  } catch (err) {
    // refused (a NOT NULL reference to a row it lacks): what the restore made goes again
    if (state === 'created' && err instanceof ConflictError) await dropCreated(url);
    throw err;
  }
}
