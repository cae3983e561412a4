/**
 * PostgreSQL source: every table from one exported snapshot, streamed with COPY ordered by
 * (tenant, primary key) and cut at every tenant change, so one wedding's rows never share a chunk.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import pg from 'pg';
import { copyOut } from './copy-out.js';
import { ConfigError, CorruptionError, FatalError, TransientError } from '../../errors.js';
import {
  PLATFORM_SCOPE,
  supplierScope,
  weddingScope,
  type ContentRef,
  type WriteHint,
  type ContentWriter,
  type KeyScope,
  writeBuffer,
} from '../api.js';
import {
  dumpQuery,
  foreignKeyOrder,
  qualified,
  readSequences,
  readTables,
  type PgTableInfo,
  type SchemaSettings,
  childConnection,
  pinOutputSettings,
} from './catalog.js';
import {
  createChangeSlot,
  dropChangeSlot,
  dropStaleSlots,
  readChanges,
  tableKey,
  type ChangeSlot,
  type TableChanges,
} from './changes.js';
import { TenantSplitter } from './split.js';
import { RecordListWriter } from '../repo/records.js';
import type { PgTable, PgTree, Segment, TableDelta } from '../tree.js';

export interface PostgresBackupOptions extends SchemaSettings {
  url: string;
  /** Tables copied at once, each on its own connection sharing the snapshot. */
  parallel?: number;
  /** Segments of one table handed to the writer before waiting for the oldest. */
  inFlight?: number;
  /** work_mem of the copying sessions, for the (tenant, key) sorts no index provides. */
  sortMemory?: string;
  /** The last backup of this database: tables unchanged since it are not read again. */
  parent?: PgTree | undefined;
  /**
   * Create a logical replication slot with the backup's snapshot (needs wal_level = logical), so
   * the next backup learns which rows changed instead of reading changed tables whole.
   */
  changeSlot?: boolean;
  /** Slot names start with this (a repository's slots are told apart from others'). */
  slotPrefix?: string;
}

/** Deltas a table carries before it is read whole again, and the share of its rows they may name. */
const MAX_DELTAS = 16;
const MAX_DELTA_SHARE = 0.25;

/** Change marks of every table, read in the backup's snapshot (see PgTable.marks). */
async function readMarks(client: pg.ClientBase): Promise<Map<string, string>> {
  const { rows } = await client.query<{ schema: string; name: string; marks: string }>(
    `SELECT n.nspname AS schema, c.relname AS name,
            concat_ws('|', c.oid,
              (SELECT string_agg(concat_ws(':', l.relfilenode, l.relfrozenxid,
                        coalesce(st.n_tup_ins + st.n_tup_upd + st.n_tup_del, -1)), ',' ORDER BY l.oid)
                 FROM pg_class l
                 LEFT JOIN pg_stat_user_tables st ON st.relid = l.oid
                WHERE l.relkind = 'r'
                  AND (l.oid = c.oid OR l.oid IN (SELECT relid FROM pg_partition_tree(c.oid))))) AS marks
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition`,
  );
  return new Map(rows.map((r) => [qualified(r), r.marks]));
}

const sameShape = (a: PgTableInfo, b: PgTableInfo): boolean =>
  JSON.stringify([a.columns, a.primaryKey, a.tenantColumn ?? null, a.scopeKind]) ===
  JSON.stringify([b.columns, b.primaryKey, b.tenantColumn ?? null, b.scopeKind]);

/**
 * True when the table holds exactly the rows it held in the parent's snapshot: same change marks,
 * same row count, and no visible row written by a transaction the parent's snapshot did not see.
 * A row's xmin is compared modulo 2^32 with the parent's xmax (valid for 2^31 transactions; older
 * parents are never trusted); a frozen xmin reads as 2, older than any snapshot, which is why the
 * marks (the frozen horizon among them) must match too.
 */
async function unchangedSince(
  client: pg.ClientBase,
  t: PgTableInfo,
  marks: string | undefined,
  parent: PgTable,
  parentSnapshot: string,
): Promise<boolean> {
  if (marks === undefined || parent.marks !== marks) return false;
  const [, xmax, xip = ''] = parentSnapshot.split(':');
  const { rows } = await client.query<{ n: string; u: string; age: string }>(
    `SELECT count(*)::text AS n,
            count(*) FILTER (WHERE ((t.xmin::text::bigint - $1 + 4294967296) % 4294967296) < 2147483648
                                OR t.xmin::text::bigint = ANY($2::bigint[]))::text AS u,
            (pg_snapshot_xmax(pg_current_snapshot())::text::bigint - $3::bigint)::text AS age
       FROM ${qualified(t)} t`,
    [
      Number(BigInt(xmax!) & 0xffffffffn),
      xip ? xip.split(',').map((x) => Number(BigInt(x) & 0xffffffffn)) : [],
      xmax,
    ],
  );
  const r = rows[0]!;
  return r.u === '0' && Number(r.n) === parent.rowCount && Number(r.age) < 2 ** 31 && Number(r.age) >= 0;
}

/** Streams `pg_dump --schema-only --section=…` output of the exported snapshot. */
function schemaSection(source: string, snapshot: string, section: 'pre-data' | 'post-data'): Readable {
  const { url, env } = childConnection(source);
  const child = spawn(
    'pg_dump',
    [
      '--schema-only',
      `--section=${section}`,
      `--snapshot=${snapshot}`,
      '--no-owner',
      '--no-privileges',
      '-d',
      url,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env },
  );
  const out = new PassThrough();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.pipe(out, { end: false });
  child.on('error', (err) => out.destroy(new FatalError(`pg_dump could not start: ${err.message}`)));
  child.on('close', (code) => {
    if (code === 0) out.end();
    else out.destroy(new TransientError(`pg_dump --section=${section} exited ${code}: ${stderr.trim()}`));
  });
  // A backup that failed elsewhere stops reading: pg_dump is stopped, and its error (the snapshot
  // is gone) reaches nobody instead of ending the process.
  out.on('error', () => undefined);
  out.on('close', () => {
    if (child.exitCode === null) child.kill();
  });
  return out;
}

function scopeOf(t: PgTableInfo, tenant: string | null): KeyScope {
  if (tenant === null || t.scopeKind === 'platform') return PLATFORM_SCOPE;
  return t.scopeKind === 'wedding' ? weddingScope(tenant) : supplierScope(tenant);
}

/**
 * One tenant and scope string per tenant for the whole backup, shared by every table's segments:
 * a wedding appears in a dozen tables, and a table has one segment per wedding.
 */
class Interned {
  private readonly seen = new Map<
    PgTableInfo['scopeKind'],
    Map<string | null, { tenant: string | null; scope: KeyScope }>
  >();

  of(t: PgTableInfo, tenant: string | null): { tenant: string | null; scope: KeyScope } {
    let kind = this.seen.get(t.scopeKind);
    if (!kind) this.seen.set(t.scopeKind, (kind = new Map()));
    let hit = kind.get(tenant);
    if (!hit) {
      hit = { tenant, scope: scopeOf(t, tenant) };
      kind.set(tenant, hit);
    }
    return hit;
  }
}

async function copyTable(
  client: pg.ClientBase,
  t: PgTableInfo,
  writer: ContentWriter,
  inFlight: number,
  interned: Interned,
  query = dumpQuery(t),
  /** How a segment gathered in memory is written (a delta's few rows per wedding go inline). */
  smallSegments: WriteHint = {},
): Promise<PgTable> {
  const column = t.tenantColumn ? t.columns.findIndex((c) => c.name === t.tenantColumn) : -1;
  const splitter = new TenantSplitter(column >= 0 ? column : undefined);
  const digest = createHash('sha256');
  // A segment below this size is one blob: gather it and hand it over whole, without a stream.
  const gather = writer.smallLimit ?? 64 * 1024;
  type Pending = Omit<Segment, 'ref'> & { ref?: ContentRef };
  // Segments wait here until stored, then go to the table's record list in order: the list, not
  // memory, holds a table's (tens of thousands of) segments.
  const segments: Pending[] = [];
  const list = new RecordListWriter<Segment>(writer);
  let bytes = 0;
  const drain = async () => {
    while (segments[0]?.ref) {
      const done = segments.shift()!;
      bytes += done.ref!.size;
      await list.push(done as Segment);
    }
  };
  // writes not yet stored; a failed one stays here, so the wait below rethrows its error
  const inflight = new Set<Promise<unknown>>();
  let seg: Pending | undefined;
  let parts: Buffer[] = [];
  let buffered = 0;
  let stream: PassThrough | undefined;
  let rowCount = 0;

  const track = (s: Pending, write: Promise<ContentRef>, feed?: PassThrough) => {
    const p: Promise<unknown> = write.then(
      (ref) => {
        s.ref = ref;
        inflight.delete(p);
      },
      (err: unknown) => {
        // wakes a `drain` wait below with the writer's error instead of hanging
        feed?.destroy(err as Error);
        throw err;
      },
    );
    p.catch(() => undefined); // surfaced by Promise.race / Promise.all below
    inflight.add(p);
  };

  const close = async () => {
    if (!seg) return;
    if (stream) stream.end();
    else track(seg, writeBuffer(writer, seg.scope, parts, smallSegments));
    seg = undefined;
    stream = undefined;
    parts = [];
    buffered = 0;
    // bounded memory: never more than inFlight segments waiting on the writer
    while (inflight.size > inFlight) await Promise.race(inflight);
    await drain();
  };

  const append = async (bytes: Buffer) => {
    if (!stream) {
      parts.push(bytes);
      buffered += bytes.length;
      if (buffered < gather) return;
      // too big for one blob: from here on it streams through the chunker
      stream = new PassThrough({ highWaterMark: 64 << 10 });
      track(seg!, writer.write(seg!.scope, stream), stream);
      const gathered = parts;
      parts = [];
      buffered = 0;
      for (const b of gathered) if (!stream.write(b)) await once(stream, 'drain');
      return;
    }
    if (!stream.write(bytes)) await once(stream, 'drain');
  };

  try {
    const source = client.query(copyOut(`COPY (${query}) TO STDOUT`));
    for await (const chunk of source as AsyncIterable<Buffer>) {
      digest.update(chunk);
      for (const run of splitter.push(chunk)) {
        if (!seg || run.tenant !== seg.tenant) {
          await close();
          const { tenant, scope } = interned.of(t, run.tenant);
          seg = { tenant, scope, rows: 0 };
          segments.push(seg);
        }
        seg.rows += run.rows;
        rowCount += run.rows;
        await append(run.bytes);
      }
    }
    if (splitter.leftover > 0) throw new CorruptionError(`COPY of ${t.schema}.${t.name} ended inside a row`);
    await close();
  } catch (err) {
    stream?.destroy(err as Error);
    list.destroy(err as Error);
    throw err;
  }
  await Promise.all(inflight);
  await drain();
  const segmentList = await list.end();
  return { ...t, rowCount, digest: digest.digest('hex'), segmentList, bytes };
}

/** What an unchanged table carries over from the parent backup: its segments (and deltas) are the parent's. */
const pick = (
  t: PgTable,
): Pick<PgTable, 'rowCount' | 'digest' | 'segmentList' | 'segments' | 'bytes' | 'deltas'> => ({
  rowCount: t.rowCount,
  digest: t.digest,
  segmentList: t.segmentList,
  segments: t.segments,
  bytes: t.bytes,
  deltas: t.deltas,
});

/** A PostgreSQL array literal of texts. */
const textArray = (values: string[]): string =>
  `{${values.map((v) => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(',')}}`;

/**
 * A table's changed rows as a delta on its parent: the keys the change slot named (written as
 * PostgreSQL prints them, so a restore compares them with the key fields of older rows), the rows
 * with those keys in this snapshot, and the table's row count.
 */
async function deltaTable(
  client: pg.ClientBase,
  t: PgTableInfo,
  before: PgTable,
  changes: TableChanges,
  writer: ContentWriter,
  inFlight: number,
  interned: Interned,
): Promise<PgTable> {
  const changed = [...changes.keys.values()];
  const keyTypes = t.primaryKey.map((k) => t.columns.find((c) => c.name === k)!.type);
  const keys = `SELECT ${t.primaryKey.map((k, j) => `CAST(k.c${j} AS ${keyTypes[j]}) AS ${pg.escapeIdentifier(k)}`).join(', ')}
      FROM unnest(${t.primaryKey.map((_, j) => `${pg.escapeLiteral(textArray(changed.map((v) => v[j]!)))}::text[]`).join(', ')})
        AS k(${t.primaryKey.map((_, j) => `c${j}`).join(', ')})`;
  const keyList = t.primaryKey.map((k) => pg.escapeIdentifier(k)).join(', ');
  const keyRef = await writer.write(
    PLATFORM_SCOPE,
    client.query(copyOut(`COPY (SELECT * FROM (${keys}) k ORDER BY ${keyList}) TO STDOUT`)),
    { compress: true },
  );
  const cols = t.columns.map((c) => pg.escapeIdentifier(c.name)).join(', ');
  const order = [...new Set([...(t.tenantColumn ? [t.tenantColumn] : []), ...t.primaryKey])]
    .map((c) => pg.escapeIdentifier(c))
    .join(', ');
  // One key column: `= ANY(array)`, which the planner serves with one index or bitmap scan in key
  // order (an IN over the unnested keys became a nested loop of random lookups, ~4x slower here).
  const where =
    t.primaryKey.length === 1
      ? `${keyList} = ANY(CAST(${pg.escapeLiteral(textArray(changed.map((v) => v[0]!)))} AS ${keyTypes[0]}[]))`
      : `(${keyList}) IN (${keys})`;
  const rows = await copyTable(
    client,
    t,
    writer,
    inFlight,
    interned,
    `SELECT ${cols} FROM ${qualified(t)} WHERE ${where} ORDER BY ${order}`,
    { inline: true },
  );
  // the parent's rows, less those whose key changed, plus the changed rows there now
  const rowCount = before.rowCount - changes.existed + rows.rowCount;
  if (rowCount < 0)
    throw new CorruptionError(`${t.schema}.${t.name}: the change stream names rows the parent did not hold`);
  const delta: TableDelta = {
    keys: keyRef,
    keyCount: changed.length,
    segmentList: rows.segmentList!,
    rows: rows.rowCount,
    bytes: rows.bytes ?? 0,
  };
  const { digest: _replaced, ...base } = pick(before);
  return { ...t, ...base, rowCount, deltas: [...(before.deltas ?? []), delta] };
}

/** Same relation and same files (no rewrite: VACUUM FULL, CLUSTER, SET UNLOGGED, a column type change). */
function sameStorage(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false;
  const files = (m: string) => {
    const [oid, rest = ''] = m.split('|');
    return `${oid}|${rest
      .split(',')
      .map((x) => x.split(':')[0])
      .join(',')}`;
  };
  return files(a) === files(b);
}

/** A worker connection inside the exported snapshot, tuned for long ordered scans. */
async function withSnapshot(url: string, snapshot: string, sortMemory: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await pinOutputSettings(c);
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await c.query(`SET TRANSACTION SNAPSHOT ${pg.escapeLiteral(snapshot)}`);
    // Sorting by (tenant, key) spills to disk at the default 4MB when no index gives the order.
    await c.query(`SELECT set_config('work_mem', $1, true)`, [sortMemory]);
    // Tables without any order keep heap order; a synchronised scan would start mid-table and
    // rotate the output, so every chunk would look new to the next backup.
    await c.query(`SELECT set_config('synchronize_seqscans', 'off', true)`);
  } catch (err) {
    await c.end().catch(() => undefined);
    throw err;
  }
  return c;
}

export async function backupPostgres(writer: ContentWriter, opts: PostgresBackupOptions): Promise<PgTree> {
  const [tenantTableName, ceremonyColumn, extra] = opts.ceremonyDate.split('.');
  if (!tenantTableName || !ceremonyColumn || extra !== undefined) {
    throw new ConfigError(`ceremony date must be 'table.column', got '${opts.ceremonyDate}'`);
  }
  const coordinator = new pg.Client({ connectionString: opts.url });
  try {
    await coordinator.connect();
  } catch (err) {
    throw new TransientError(`source database unreachable: ${(err as Error).message}`, { cause: err });
  }
  const workers: pg.Client[] = [];
  let changeSlot: ChangeSlot | undefined;
  let finished = false;
  try {
    if (opts.changeSlot) {
      await dropStaleSlots(coordinator, opts.slotPrefix ?? 'wedvault_', opts.parent?.changes?.slot);
      changeSlot = await createChangeSlot(opts.url, opts.slotPrefix);
    }
    // The coordinator's transaction keeps the exported snapshot alive until every worker is done
    // (with a change slot, the slot's replication connection does, and every session imports it).
    await pinOutputSettings(coordinator);
    await coordinator.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    if (changeSlot)
      await coordinator.query(`SET TRANSACTION SNAPSHOT ${pg.escapeLiteral(changeSlot.snapshot)}`);
    const head = await coordinator.query<{
      snapshot: string;
      time: Date;
      lsn: string;
      version: string;
      db: string;
      xids: string;
    }>(
      `SELECT ${changeSlot ? pg.escapeLiteral(changeSlot.snapshot) : 'pg_export_snapshot()'} AS snapshot, now() AS time, pg_current_wal_lsn()::text AS lsn,
              current_setting('server_version') AS version, current_database() AS db,
              pg_current_snapshot()::text AS xids`,
    );
    const { snapshot, time, lsn, version, db, xids } = head.rows[0]!;
    // in foreign-key order, so a restore into a live schema can insert table after table
    const tables = await foreignKeyOrder(coordinator, await readTables(coordinator, opts));
    // Reading the parent slot's changes takes PostgreSQL a while (it decodes the WAL since): it
    // runs beside the catalog reads and connections below.
    const changesRead =
      changeSlot && opts.parent?.changes
        ? changesSince(opts.url, opts.parent.changes.slot, tables)
        : undefined;
    changesRead?.catch(() => undefined); // awaited below
    const sequences = await readSequences(coordinator);
    const tenantTable = tables.find((t) => t.name === tenantTableName && t.scopeKind === 'wedding');
    const tenants = tenantTable
      ? (
          await coordinator.query<{ id: string; d: string | null }>(
            `SELECT ${pg.escapeIdentifier(tenantTable.tenantColumn!)}::text AS id,
                    ${pg.escapeIdentifier(ceremonyColumn)}::date::text AS d
               FROM ${qualified(tenantTable)} ORDER BY 1`,
          )
        ).rows.map((r) => ({ id: r.id, ceremonyDate: r.d }))
      : [];

    // pg_dump runs beside the table copies: its start-up and catalog reads cost a second or so.
    const schema = Promise.all([
      writer.write(PLATFORM_SCOPE, schemaSection(opts.url, snapshot, 'pre-data'), { compress: true }),
      writer.write(PLATFORM_SCOPE, schemaSection(opts.url, snapshot, 'post-data'), { compress: true }),
    ]);
    schema.catch(() => undefined); // awaited below

    const parallel = Math.max(1, opts.parallel ?? 2);
    const connecting = Array.from({ length: Math.min(parallel, tables.length) }, () =>
      withSnapshot(opts.url, snapshot, opts.sortMemory ?? '64MB'),
    );
    // every connection made is closed below, even when another one failed
    const connected = await Promise.allSettled(connecting);
    for (const c of connected) if (c.status === 'fulfilled') workers.push(c.value);
    for (const c of connected) if (c.status === 'rejected') throw c.reason;
    // biggest tables first, so the parallel connections finish together
    const sizes = await coordinator.query<{ t: string; b: string }>(
      `SELECT format('%I.%I', n.nspname, c.relname) AS t,
              (SELECT sum(pg_total_relation_size(p.relid)) FROM pg_partition_tree(c.oid) p)::text AS b
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition`,
    );
    const size = new Map(sizes.rows.map((r) => [r.t, Number(r.b)]));
    const sizeOf = (t: PgTableInfo) =>
      size.get(`${pg.escapeIdentifier(t.schema)}.${pg.escapeIdentifier(t.name)}`) ?? 0;
    const queue = tables.map((t, i) => ({ t, i })).sort((a, b) => sizeOf(b.t) - sizeOf(a.t));
    const done: PgTable[] = new Array(tables.length);
    const interned = new Interned();
    const marks = await readMarks(coordinator);
    const parentTables = new Map((opts.parent?.tables ?? []).map((p) => [qualified(p), p]));
    const parentSnapshot = opts.parent?.xidSnapshot;
    const changes = await changesRead;
    const logged = changes ? await plainLoggedTables(coordinator) : new Set<string>();
    await Promise.all(
      workers.map(async (client) => {
        for (let job = queue.shift(); job; job = queue.shift()) {
          const mark = marks.get(qualified(job.t));
          const before = parentTables.get(qualified(job.t));
          // The change slot says which rows changed: tables it names no row of are the parent's,
          // a few changed rows make a delta. Tables it cannot speak for (partitioned, unlogged,
          // rewritten, without a key) go the way below.
          if (
            changes &&
            before &&
            logged.has(qualified(job.t)) &&
            job.t.primaryKey.length > 0 &&
            sameShape(before, job.t) &&
            sameStorage(before.marks, mark)
          ) {
            const changed = changes.get(tableKey(job.t.schema, job.t.name));
            if (!changed) {
              done[job.i] = { ...job.t, ...pick(before), marks: mark, reused: true };
              continue;
            }
            const named = (before.deltas ?? []).reduce((n, d) => n + d.keyCount, changed.keys.size);
            if (
              !changed.whole &&
              (before.deltas?.length ?? 0) < MAX_DELTAS &&
              named <= Math.max(1, before.rowCount) * MAX_DELTA_SHARE
            ) {
              const table = await deltaTable(
                client,
                job.t,
                before,
                changed,
                writer,
                opts.inFlight ?? 32,
                interned,
              );
              done[job.i] = { ...table, marks: mark };
              continue;
            }
          }
          if (
            before &&
            parentSnapshot &&
            sameShape(before, job.t) &&
            (await unchangedSince(client, job.t, mark, before, parentSnapshot))
          ) {
            done[job.i] = { ...job.t, ...pick(before), marks: mark, reused: true };
            continue;
          }
          const table = await copyTable(client, job.t, writer, opts.inFlight ?? 32, interned);
          done[job.i] = { ...table, marks: mark };
        }
      }),
    );
    const [preData, postData] = await schema;
    finished = true;
    return {
      kind: 'postgres',
      database: db,
      serverVersion: version,
      snapshotTime: time.toISOString(),
      lsn,
      schema: { preData, postData },
      sequences,
      tables: done,
      tenants,
      xidSnapshot: xids,
      ...(changeSlot ? { changes: { slot: changeSlot.slot, lsn: changeSlot.lsn } } : {}),
    };
  } finally {
    await Promise.all(workers.map((w) => w.end().catch(() => undefined)));
    await changeSlot?.close();
    // a failed backup's slot would hold WAL for nothing; a finished one's is the next backup's
    if (changeSlot && !finished) await dropChangeSlot(opts.url, changeSlot.slot).catch(() => undefined);
    await coordinator.end().catch(() => undefined);
  }
}

/** The changes the parent's slot holds (read after this backup's slot exists); undefined when that slot is gone. */
async function changesSince(
  url: string,
  slot: string,
  tables: PgTableInfo[],
): Promise<Map<string, TableChanges> | undefined> {
  const keys = new Map(tables.map((t) => [tableKey(t.schema, t.name), t.primaryKey]));
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    // the output plugin prints key values in this session's settings: the copying sessions' ones
    await pinOutputSettings(c);
    return await readChanges(c, slot, (table) => {
      const k = keys.get(table);
      return k && k.length > 0 ? k : undefined;
    });
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * Plain (not partitioned), logged tables whose replica identity is their primary key or the whole
 * row: the only ones whose every row change the slot sees with the old key (with NOTHING, or an
 * index other than the key, an update that changes the key would not say which key it left).
 */
async function plainLoggedTables(client: pg.ClientBase): Promise<Set<string>> {
  const { rows } = await client.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND NOT c.relispartition AND c.relreplident IN ('d', 'f')`,
  );
  return new Set(rows.map((r) => qualified(r)));
}
