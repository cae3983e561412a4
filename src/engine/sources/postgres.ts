/**
 * PostgreSQL source: every table from one exported snapshot, streamed with COPY ordered by
 * (tenant, primary key) and cut at every tenant change, so one wedding's rows never share a chunk.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { CorruptionError, FatalError, TransientError } from '../../errors.js';
import {
  PLATFORM_SCOPE,
  supplierScope,
  weddingScope,
  type ContentRef,
  type ContentWriter,
  type KeyScope,
} from '../api.js';
import {
  dumpQuery,
  readSequences,
  readTables,
  type PgTableInfo,
  type SchemaSettings,
  type SequenceValue,
} from './postgres-catalog.js';
import { TenantSplitter } from './postgres-split.js';

export interface Segment {
  tenant: string | null;
  scope: KeyScope;
  rows: number;
  ref: ContentRef;
}

export interface PgTable extends PgTableInfo {
  rowCount: number;
  /** SHA-256 of the table's COPY text in dump order. */
  digest: string;
  segments: Segment[];
}

export interface PgTree {
  kind: 'postgres';
  database: string;
  serverVersion: string;
  snapshotTime: string;
  lsn: string;
  schema: { preData: ContentRef; postData: ContentRef };
  sequences: SequenceValue[];
  tables: PgTable[];
  tenants: { id: string; ceremonyDate: string | null }[];
}

export interface PostgresBackupOptions extends SchemaSettings {
  url: string;
  /** Tables copied at once, each on its own connection sharing the snapshot. */
  parallel?: number;
  /** Segments of one table handed to the writer before waiting for the oldest. */
  inFlight?: number;
}

/** Streams `pg_dump --schema-only --section=…` output of the exported snapshot. */
function schemaSection(url: string, snapshot: string, section: 'pre-data' | 'post-data'): Readable {
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
    { stdio: ['ignore', 'pipe', 'pipe'] },
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
  return out;
}

function scopeOf(t: PgTableInfo, tenant: string | null): KeyScope {
  if (tenant === null || t.scopeKind === 'platform') return PLATFORM_SCOPE;
  return t.scopeKind === 'wedding' ? weddingScope(tenant) : supplierScope(tenant);
}

async function copyTable(
  client: pg.ClientBase,
  t: PgTableInfo,
  writer: ContentWriter,
  inFlight: number,
): Promise<PgTable> {
  const column = t.tenantColumn ? t.columns.findIndex((c) => c.name === t.tenantColumn) : -1;
  const splitter = new TenantSplitter(column >= 0 ? column : undefined);
  const digest = createHash('sha256');
  const segments: (Omit<Segment, 'ref'> & { ref?: ContentRef })[] = [];
  const pending: Promise<unknown>[] = [];
  const inflight = new Set<Promise<unknown>>();
  let current: { seg: (typeof segments)[number]; stream: PassThrough } | undefined;
  let rowCount = 0;

  const close = () => {
    current?.stream.end();
    current = undefined;
  };
  const open = async (tenant: string | null) => {
    close();
    const seg = { tenant, scope: scopeOf(t, tenant), rows: 0 } as (typeof segments)[number];
    const stream = new PassThrough({ highWaterMark: 64 << 10 });
    segments.push(seg);
    const p: Promise<unknown> = writer.write(seg.scope, stream).then((ref) => {
      seg.ref = ref;
      inflight.delete(p);
    });
    pending.push(p);
    inflight.add(p);
    current = { seg, stream };
    // bounded memory: never more than inFlight segments waiting on the writer
    while (inflight.size > inFlight) await Promise.race(inflight);
  };

  const source = client.query(copyTo(`COPY (${dumpQuery(t)}) TO STDOUT`));
  for await (const chunk of source as AsyncIterable<Buffer>) {
    digest.update(chunk);
    for (const run of splitter.push(chunk)) {
      if (!current || run.tenant !== current.seg.tenant) await open(run.tenant);
      current!.seg.rows += run.rows;
      rowCount += run.rows;
      if (!current!.stream.write(run.bytes)) await new Promise((r) => current!.stream.once('drain', r));
    }
  }
  if (splitter.leftover > 0) throw new CorruptionError(`COPY of ${t.schema}.${t.name} ended inside a row`);
  close();
  await Promise.all(pending);
  return { ...t, rowCount, digest: digest.digest('hex'), segments: segments as Segment[] };
}

async function withSnapshot(url: string, snapshot: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  await c.query(`SET TRANSACTION SNAPSHOT ${pg.escapeLiteral(snapshot)}`);
  return c;
}

export async function backupPostgres(writer: ContentWriter, opts: PostgresBackupOptions): Promise<PgTree> {
  const coordinator = new pg.Client({ connectionString: opts.url });
  try {
    await coordinator.connect();
  } catch (err) {
    throw new TransientError(`source database unreachable: ${(err as Error).message}`, { cause: err });
  }
  const workers: pg.Client[] = [];
  try {
    await coordinator.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const head = await coordinator.query<{
      snapshot: string;
      time: Date;
      lsn: string;
      version: string;
      db: string;
    }>(
      `SELECT pg_export_snapshot() AS snapshot, now() AS time, pg_current_wal_lsn()::text AS lsn,
              current_setting('server_version') AS version, current_database() AS db`,
    );
    const { snapshot, time, lsn, version, db } = head.rows[0]!;
    const tables = await readTables(coordinator, opts);
    const sequences = await readSequences(coordinator);
    const [tenantTableName, ceremonyColumn] = opts.ceremonyDate.split('.') as [string, string];
    const tenantTable = tables.find((t) => t.name === tenantTableName && t.scopeKind === 'wedding');
    const tenants = tenantTable
      ? (
          await coordinator.query<{ id: string; d: string | null }>(
            `SELECT ${pg.escapeIdentifier(tenantTable.tenantColumn!)}::text AS id,
                    ${pg.escapeIdentifier(ceremonyColumn)}::date::text AS d
               FROM ${pg.escapeIdentifier(tenantTable.schema)}.${pg.escapeIdentifier(tenantTable.name)} ORDER BY 1`,
          )
        ).rows.map((r) => ({ id: r.id, ceremonyDate: r.d }))
      : [];

    const [preData, postData] = await Promise.all([
      writer.write(PLATFORM_SCOPE, schemaSection(opts.url, snapshot, 'pre-data'), { compress: true }),
      writer.write(PLATFORM_SCOPE, schemaSection(opts.url, snapshot, 'post-data'), { compress: true }),
    ]);

    const parallel = Math.max(1, opts.parallel ?? 2);
    for (let i = 0; i < Math.min(parallel, tables.length); i++)
      workers.push(await withSnapshot(opts.url, snapshot));
    // biggest tables first, so the parallel connections finish together
    const sizes = await coordinator.query<{ t: string; b: string }>(
      `SELECT format('%I.%I', n.nspname, c.relname) AS t, pg_total_relation_size(c.oid)::text AS b
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r'`,
    );
    const size = new Map(sizes.rows.map((r) => [r.t, Number(r.b)]));
    const queue = tables
      .map((t, i) => ({ t, i }))
      .sort(
        (a, b) => (size.get(`${b.t.schema}.${b.t.name}`) ?? 0) - (size.get(`${a.t.schema}.${a.t.name}`) ?? 0),
      );
    const done: PgTable[] = new Array(tables.length);
    await Promise.all(
      workers.map(async (client) => {
        for (let job = queue.shift(); job; job = queue.shift()) {
          done[job.i] = await copyTable(client, job.t, writer, opts.inFlight ?? 32);
        }
      }),
    );
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
    };
  } finally {
    await Promise.all(workers.map((w) => w.end().catch(() => undefined)));
    await coordinator.end().catch(() => undefined);
  }
}
