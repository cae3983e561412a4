/**
 * A drill's checks of a restored scratch database against the snapshot that filled it: row counts
 * and digests as recorded at backup, foreign keys valid, tenant rows owned by a wedding, payment totals.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { isErased, type ContentReader } from '../api.js';
import type { PgTable, PgTree } from '../tree.js';
import { dumpQuery, pinOutputSettings, qualified } from './catalog.js';
import { picked, tableBytes } from './table-rows.js';

export interface DrillProblem {
  object: string;
  kind: 'row_count' | 'digest' | 'foreign_key' | 'orphans' | 'payment_total' | 'restore_failed' | 'files';
  detail: string;
}

/** Drops a scratch database on the server of serverUrl; an absent one is fine. */
export async function dropScratchDatabase(serverUrl: string, database: string): Promise<void> {
  const admin = new URL(serverUrl);
  admin.pathname = '/postgres';
  const c = new pg.Client({ connectionString: admin.toString() });
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(database)} WITH (FORCE)`);
  } finally {
    await c.end();
  }
}

/** Sum of a decimal column straight from the backed-up COPY text, exact (BigInt at 12 decimals). */
async function backedUpTotal(
  reader: ContentReader,
  t: PgTable,
  column: string,
  erased: ReadonlySet<string>,
): Promise<bigint> {
  const idx = t.columns.findIndex((c) => c.name === column);
  let total = 0n;
  for await (const row of rowsOf(backedUpRows(reader, t, erased))) {
    const v = row.toString('utf8').split('\t')[idx]!;
    if (v !== '\\N') total += toFixed12(v);
  }
  return total;
}

/** Every row of the table as backed up (base and deltas merged), as COPY text pieces. */
async function* backedUpRows(
  reader: ContentReader,
  t: PgTable,
  erased: ReadonlySet<string> = new Set(),
): AsyncGenerator<Buffer> {
  const levels = await picked(reader, t, () => (s) => !isErased(s.scope, erased));
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

/** Row counts and digests of every table against the backup's. */
async function checkTables(
  c: pg.Client,
  reader: ContentReader,
  tree: PgTree,
  erased: ReadonlySet<string>,
): Promise<DrillProblem[]> {
  const problems: DrillProblem[] = [];
  for (const t of tree.tables) {
    const name = `${t.schema}.${t.name}`;
    // a tenant's table of a point holding an erased scope: the recorded digest counts rows the
    // restore rightly left out, so the rows are compared with the backed-up ones less those
    const partial = erased.size > 0 && t.scopeKind !== 'platform';
    let got = t.digest === undefined || partial ? undefined : await tableDigest(c, t);
    let expected = t.digest;
    let expectedRows = t.rowCount;
    if (!got) {
      // a table with deltas: the same set of rows as the backup holds, in whatever order
      const copied = c.query(copyTo(`COPY (${dumpQuery(t)}) TO STDOUT`)) as AsyncIterable<Buffer>;
      got = await rowSetDigest(copied);
      const backed = await rowSetDigest(backedUpRows(reader, t, erased));
      expected = backed.digest;
      expectedRows = backed.rows;
    }
    if (got.rows !== expectedRows) {
      problems.push({
        object: name,
        kind: 'row_count',
        detail: `${got.rows} rows, backed up ${expectedRows}`,
      });
    } else if (got.digest !== expected) {
      problems.push({ object: name, kind: 'digest', detail: 'rows differ from the backup' });
    }
  }
  return problems;
}

/** Foreign keys left NOT VALID by the restore. */
async function checkForeignKeys(c: pg.Client): Promise<DrillProblem[]> {
  const fks = await c.query<{ name: string; tbl: string }>(
    `SELECT conname AS name, conrelid::regclass::text AS tbl FROM pg_constraint WHERE contype = 'f' AND NOT convalidated`,
  );
  return fks.rows.map((r) => ({ object: r.tbl, kind: 'foreign_key', detail: `${r.name} not valid` }));
}

/** Rows of wedding tables whose wedding is not in the tenant table. */
async function checkOrphans(c: pg.Client, tree: PgTree): Promise<DrillProblem[]> {
  const problems: DrillProblem[] = [];
  const tenantTable = tree.tables.find(
    (t) =>
      t.scopeKind === 'wedding' &&
      t.tenantColumn &&
      t.primaryKey[0] === t.tenantColumn &&
      t.columns.length > 1 &&
      tree.tenants.length > 0,
  );
  if (!tenantTable) return problems;
  // a table reaching the wedding through foreign keys is held to it by those keys (checked above)
  for (const t of tree.tables.filter(
    (x) => x.scopeKind === 'wedding' && x.tenantColumn && x !== tenantTable,
  )) {
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
  return problems;
}

/** The payment column's total against the backed-up rows' (exact decimals). */
async function checkPayments(
  c: pg.Client,
  reader: ContentReader,
  tree: PgTree,
  paymentColumn: string | undefined,
  erased: ReadonlySet<string>,
): Promise<DrillProblem[]> {
  const [payTable, payColumn] = (paymentColumn ?? 'payments.amount').split('.') as [string, string];
  const payments = tree.tables.find(
    (t) => t.name === payTable && t.columns.some((x) => x.name === payColumn),
  );
  if (!payments) return [];
  const expected = await backedUpTotal(reader, payments, payColumn, erased);
  const { rows } = await c.query<{ s: string | null }>(
    `SELECT sum(${pg.escapeIdentifier(payColumn)})::text AS s FROM ${qualified(payments)}`,
  );
  const got = rows[0]!.s === null ? 0n : toFixed12(rows[0]!.s);
  if (got === expected) return [];
  return [{ object: `${payments.schema}.${payments.name}`, kind: 'payment_total', detail: 'totals differ' }];
}

/** Problems found in the restored database at url (empty when it matches the backup). */
export async function checkDatabase(
  reader: ContentReader,
  tree: PgTree,
  url: string,
  paymentColumn: string | undefined,
  erased: ReadonlySet<string> = new Set(),
): Promise<DrillProblem[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    // rows print as the backup printed them
    await pinOutputSettings(c);
    return [
      ...(await checkTables(c, reader, tree, erased)),
      ...(await checkForeignKeys(c)),
      ...(await checkOrphans(c, tree)),
      ...(await checkPayments(c, reader, tree, paymentColumn, erased)),
    ];
  } finally {
    await c.end();
  }
}
