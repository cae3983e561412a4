/**
 * Restore drill: restore a recovery point into a scratch database and directory, then prove it:
 * row counts and digests as recorded at backup, foreign keys valid, every tenant row owned by an
 * existing wedding, payment totals equal to the backed-up ones. The elapsed time is the measured RTO.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { errorMessage } from '../errors.js';
import type { ContentReader } from './api.js';
import type { Repository } from './repo/repository.js';
import { restorePostgres } from './restore-postgres.js';
import { restoreFiles, type FileEntry } from './sources/files.js';
import { dumpQuery, pinOutputSettings, qualified } from './sources/postgres-catalog.js';
import type { PgTable, PgTree } from './sources/postgres.js';
import { picked, tableBytes } from './table-rows.js';

export interface DrillProblem {
  object: string;
  kind: 'row_count' | 'digest' | 'foreign_key' | 'orphans' | 'payment_total' | 'restore_failed' | 'files';
  detail: string;
}

export interface DrillResult {
  status: 'passed' | 'failed';
  problems: DrillProblem[];
  rtoMs: number;
  tables: number;
  files: number;
}

export interface DrillOptions {
  /** Any database URL on the server where the scratch database may be created. */
  scratchServerUrl: string;
  /** Runs after the restore and before the checks (tests use it to damage the copy). */
  beforeChecks?: (scratchUrl: string) => Promise<void>;
  /** Table and column whose sum must match the backup (default payments.amount when present). */
  paymentColumn?: string;
  /**
   * Names of the scratch database and directory (default random). A caller that records them
   * beforehand can drop them if the drill dies; whatever an earlier attempt left there is dropped first.
   */
  scratch?: DrillScratch;
}

export interface DrillScratch {
  database: string;
  dir: string;
}

/** Scratch names derived from a test id: a dead drill's leftovers are found from its row alone. */
export function drillScratchFor(testId: string): DrillScratch {
  const tag = testId.replace(/[^0-9a-f]/gi, '').toLowerCase();
  return { database: `wv_drill_${tag}`, dir: path.join(tmpdir(), `wv-drill-${tag}`) };
}

/** Drops a drill's scratch database (on the server of serverUrl) and directory; absent ones are fine. */
export async function dropDrillScratch(serverUrl: string, scratch: DrillScratch): Promise<void> {
  await rm(scratch.dir, { recursive: true, force: true });
  const admin = new URL(serverUrl);
  admin.pathname = '/postgres';
  const c = new pg.Client({ connectionString: admin.toString() });
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(scratch.database)} WITH (FORCE)`);
  } finally {
    await c.end();
  }
}

/** Sum of a decimal column straight from the backed-up COPY text, exact (BigInt at 12 decimals). */
async function backedUpTotal(reader: ContentReader, t: PgTable, column: string): Promise<bigint> {
  const idx = t.columns.findIndex((c) => c.name === column);
  let total = 0n;
  for await (const row of rowsOf(backedUpRows(reader, t))) {
    const v = row.toString('utf8').split('\t')[idx]!;
    if (v !== '\\N') total += toFixed12(v);
  }
  return total;
}

/** Every row of the table as backed up (base and deltas merged), as COPY text pieces. */
async function* backedUpRows(reader: ContentReader, t: PgTable): AsyncGenerator<Buffer> {
  const levels = await picked(reader, t, () => () => true);
  if (levels) yield* tableBytes(reader, t, levels, { rows: 0 });
}

/** The lines of COPY text pieces, one Buffer each (without the newline). */
async function* rowsOf(pieces: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let carry: Buffer | undefined;
  for await (const p of pieces) {
    const piece = carry ? Buffer.concat([carry, p]) : p;
    let start = 0;
    for (let nl = piece.indexOf(10); nl >= 0; nl = piece.indexOf(10, start)) {
      yield piece.subarray(start, nl);
      start = nl + 1;
    }
    carry = start < piece.length ? piece.subarray(start) : undefined;
  }
  if (carry) yield carry;
}

/**
 * A digest of a set of rows in any order: the sum of their SHA-256 values modulo 2^256. For tables
 * whose backup carries deltas: a restore loads their rows in another order than the dump's.
 */
async function rowSetDigest(pieces: AsyncIterable<Buffer>): Promise<{ rows: number; digest: string }> {
  const sum = new Uint32Array(8);
  let rows = 0;
  for await (const row of rowsOf(pieces)) {
    const h = createHash('sha256').update(row).digest();
    let carry = 0;
    for (let i = 7; i >= 0; i--) {
      const v = sum[i]! + h.readUInt32BE(i * 4) + carry;
      sum[i] = v >>> 0;
      carry = v > 0xffffffff ? 1 : 0;
    }
    rows++;
  }
  return { rows, digest: Buffer.from(sum.buffer).toString('hex') };
}

function toFixed12(v: string): bigint {
  const neg = v.startsWith('-');
  const [int, frac = ''] = (neg ? v.slice(1) : v).split('.');
  const n = BigInt(int! + frac.padEnd(12, '0').slice(0, 12));
  return neg ? -n : n;
}

async function tableDigest(client: pg.Client, t: PgTable): Promise<{ rows: number; digest: string }> {
  const h = createHash('sha256');
  let rows = 0;
  for await (const chunk of client.query(
    copyTo(`COPY (${dumpQuery(t)}) TO STDOUT`),
  ) as AsyncIterable<Buffer>) {
    h.update(chunk);
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) rows++;
  }
  return { rows, digest: h.digest('hex') };
}

async function checkDatabase(
  reader: ContentReader,
  tree: PgTree,
  url: string,
  opts: DrillOptions,
): Promise<DrillProblem[]> {
  const problems: DrillProblem[] = [];
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    // rows print as the backup printed them
    await pinOutputSettings(c);
    for (const t of tree.tables) {
      const name = `${t.schema}.${t.name}`;
      let got = t.digest === undefined ? undefined : await tableDigest(c, t);
      let expected = t.digest;
      if (!got) {
        // a table with deltas: the same set of rows as the backup holds, in whatever order
        const copied = c.query(copyTo(`COPY (${dumpQuery(t)}) TO STDOUT`)) as AsyncIterable<Buffer>;
        got = await rowSetDigest(copied);
        expected = (await rowSetDigest(backedUpRows(reader, t))).digest;
      }
      if (got.rows !== t.rowCount) {
        problems.push({
          object: name,
          kind: 'row_count',
          detail: `${got.rows} rows, backed up ${t.rowCount}`,
        });
      } else if (got.digest !== expected) {
        problems.push({ object: name, kind: 'digest', detail: 'rows differ from the backup' });
      }
    }
    const fks = await c.query<{ name: string; tbl: string }>(
      `SELECT conname AS name, conrelid::regclass::text AS tbl FROM pg_constraint WHERE contype = 'f' AND NOT convalidated`,
    );
    for (const r of fks.rows)
      problems.push({ object: r.tbl, kind: 'foreign_key', detail: `${r.name} not valid` });

    const tenantTable = tree.tables.find(
      (t) =>
        t.scopeKind === 'wedding' &&
        t.tenantColumn &&
        t.primaryKey[0] === t.tenantColumn &&
        t.columns.length > 1 &&
        tree.tenants.length > 0,
    );
    if (tenantTable) {
      for (const t of tree.tables.filter((x) => x.scopeKind === 'wedding' && x !== tenantTable)) {
        const col = pg.escapeIdentifier(t.tenantColumn!);
        const { rows } = await c.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM ${qualified(t)} x WHERE x.${col} IS NOT NULL AND NOT EXISTS
             (SELECT 1 FROM ${qualified(tenantTable)} w WHERE w.${pg.escapeIdentifier(tenantTable.tenantColumn!)} = x.${col})`,
        );
        if (rows[0]!.n > 0) {
          problems.push({
            object: `${t.schema}.${t.name}`,
            kind: 'orphans',
            detail: `${rows[0]!.n} rows of no wedding`,
          });
        }
      }
    }

    const [payTable, payColumn] = (opts.paymentColumn ?? 'payments.amount').split('.') as [string, string];
    const payments = tree.tables.find(
      (t) => t.name === payTable && t.columns.some((x) => x.name === payColumn),
    );
    if (payments) {
      const expected = await backedUpTotal(reader, payments, payColumn);
      const { rows } = await c.query<{ s: string | null }>(
        `SELECT sum(${pg.escapeIdentifier(payColumn)})::text AS s FROM ${qualified(payments)}`,
      );
      const got = rows[0]!.s === null ? 0n : toFixed12(rows[0]!.s);
      if (got !== expected) {
        problems.push({
          object: `${payments.schema}.${payments.name}`,
          kind: 'payment_total',
          detail: 'totals differ',
        });
      }
    }
  } finally {
    await c.end();
  }
  return problems;
}

export async function runDrill(
  repo: Repository,
  snapshotId: string,
  opts: DrillOptions,
): Promise<DrillResult> {
  const started = Date.now();
  const snap = await repo.loadSnapshot(snapshotId);
  const tree = snap.tree as { postgres?: PgTree; files?: Record<string, FileEntry[]> };
  const problems: DrillProblem[] = [];
  const names = opts.scratch ?? {
    database: `wv_drill_${randomBytes(6).toString('hex')}`,
    dir: await mkdtemp(path.join(tmpdir(), 'wv-drill-')),
  };
  if (opts.scratch) {
    await dropDrillScratch(opts.scratchServerUrl, names);
    await mkdir(names.dir, { recursive: true, mode: 0o700 });
  }
  const dir = names.dir;
  const scratch = new URL(opts.scratchServerUrl);
  scratch.pathname = `/${names.database}`;
  let files = 0;
  try {
    if (tree.postgres) {
      try {
        await restorePostgres(repo.reader({ wholePacks: true }), tree.postgres, {
          targetUrl: scratch.toString(),
        });
      } catch (err) {
        problems.push({ object: 'database', kind: 'restore_failed', detail: errorMessage(err) });
      }
    }
    for (const [name, entries] of Object.entries(tree.files ?? {})) {
      try {
        files += (
          await restoreFiles(repo.reader({ wholePacks: true }), entries, { targetDir: path.join(dir, name) })
        ).files;
      } catch (err) {
        problems.push({ object: `files:${name}`, kind: 'files', detail: errorMessage(err) });
      }
    }
    const rtoMs = Date.now() - started;
    if (tree.postgres && problems.length === 0) {
      await opts.beforeChecks?.(scratch.toString());
      problems.push(...(await checkDatabase(repo.reader(), tree.postgres, scratch.toString(), opts)));
    }
    return {
      status: problems.length ? 'failed' : 'passed',
      problems,
      rtoMs,
      tables: tree.postgres?.tables.length ?? 0,
      files,
    };
  } finally {
    await dropDrillScratch(opts.scratchServerUrl, names);
  }
}
