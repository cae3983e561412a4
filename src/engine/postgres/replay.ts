/**
 * Replays a stream of committed transactions (pitr/types.ts) into a target database, each in one
 * database transaction, as the source committed them. `session_replication_role = replica`: no
 * user trigger fires and no foreign key is checked (the stream is consistent already; cascades
 * arrive as their own changes). Transactions without DDL go many to a round trip, as one
 * multi-statement query committed at its last source commit; a transaction with DDL runs statement by statement, the catalog read
 * again after each DDL so the statements after it see the new shape.
 */
import pg from 'pg';
import { ConfigError, FatalError } from '../../errors.js';
import { weddingScope } from '../api.js';
import { DDL_MESSAGE_PREFIX, type RowValues, type Txn, type TxnChange } from '../pitr/types.js';
import { pinOutputSettings } from './catalog.js';
import { UNCHANGED_TOAST } from './changes.js';
import {
  deleteKeys,
  deleteRow,
  hasKey,
  insertRows,
  insertShape,
  keyOfRow,
  readTargetTables,
  truncateTables,
  updateRow,
  upsertRow,
  type TargetTable,
} from './replay-sql.js';

export interface ReplayOptions {
  /** One wedding (tenant id): UPDATEs become upserts and touches are applied for that wedding. */
  wedding?: string | undefined;
  /** SQL text per round trip, about (default 1 MiB): bigger batches, fewer round trips. */
  batchBytes?: number;
  /**
   * Commit every source transaction on its own. Default false: a round trip's transactions share
   * one database transaction, which still holds each of them whole and commits only at a source
   * commit (the target is never between two of a transaction's changes), at half the cost.
   */
  commitEach?: boolean;
  /** Told after each round trip: the newest transaction now committed in the target. */
  onCommitted?: ((last: Txn, count: number) => void) | undefined;
}

export interface ReplayResult {
  txns: number;
  changes: number;
  /** Bytes of row values and messages replayed (the change stream's payload, for MB/s). */
  bytes: number;
  last?: { commitLsn: string; commitTime: string } | undefined;
  /**
   * UPDATEs and DELETEs that found no row (whole database only: the target and stream disagree),
   * or whose row the stream cannot name (a table without key or REPLICA IDENTITY FULL).
   */
  missed: { table: string; op: string; key: string }[];
  /** Sequence positions the stream recorded (the newest seen), for `settleSequences`. */
  sequences: Record<string, string>;
  ms: number;
}

interface Statement {
  sql: string;
  /** A row the statement must find (whole database): reported when it finds none. */
  expect?: { table: string; op: string; key: string };
  /** A touch's delete by a whole key: consecutive ones of a table go as one DELETE (`flush`). */
  gone?: { t: TargetTable; keys: RowValues[] };
}

const tableId = (schema: string, name: string) => `${schema}\u0000${name}`;
const valueBytes = (r: RowValues | undefined) =>
  r ? Object.values(r).reduce((n, v) => n + (v?.length ?? 0), 0) : 0;

/** Bytes a change carries: what its segment stores, near enough, for throughput figures. */
export function changeBytes(c: TxnChange): number {
  if (c.kind === 'row') return valueBytes(c.new) + valueBytes(c.old);
  if (c.kind === 'touch') return valueBytes(c.key);
  if (c.kind === 'message') return c.content.length;
  return 0;
}

/** Does a touch's `scope` (a tenant id or a key scope, a class scope too) name this wedding? */
const ownScope = (scope: string | undefined, wedding: string) =>
  scope !== undefined &&
  (scope === wedding || scope === weddingScope(wedding) || scope.startsWith(`${weddingScope(wedding)}/`));

export class Replayer {
  private tables = new Map<string, TargetTable>();
  private pending: Statement[] = [];
  private pendingBytes = 0;
  private pendingTxns: Txn[] = [];
  readonly result: ReplayResult = { txns: 0, changes: 0, bytes: 0, missed: [], sequences: {}, ms: 0 };

  constructor(
    private readonly c: pg.ClientBase,
    private readonly opts: ReplayOptions = {},
  ) {}

  /** Session settings (values parse as the slot printed them) and the target's catalog. */
  async start(): Promise<void> {
    await pinOutputSettings(this.c);
    try {
      await this.c.query(`SET session_replication_role = replica; SET synchronous_commit = off`);
    } catch (err) {
      // without it, triggers would fire a second time for what the stream already holds (audit rows, cascades)
      if (err instanceof pg.DatabaseError && err.code === '42501')
        throw new ConfigError(
          `replay needs to set session_replication_role on the target (a superuser; rds_superuser on RDS): ${err.message}`,
          { cause: err },
        );
      throw err;
    }
    this.tables = await readTargetTables(this.c);
  }

  private table(schema: string, name: string): TargetTable {
    const t = this.tables.get(tableId(schema, name));
    if (!t)
      throw new FatalError(`replay: table ${schema}.${name} is not in the target database`, {
        details: { table: `${schema}.${name}` },
      });
    return t;
  }

  /** The statements of one transaction without DDL, consecutive INSERTs of a table merged. */
  private statements(txn: Txn): Statement[] {
    const out: Statement[] = [];
    let run: { t: TargetTable; shape: string; rows: RowValues[] } | undefined;
    const flush = () => {
      if (run) out.push({ sql: insertRows(run.t, run.rows) });
      run = undefined;
    };
    for (const ch of txn.changes) {
      if (ch.kind === 'row' && ch.op === 'INSERT' && ch.new) {
        const t = this.table(ch.schema, ch.table);
        const shape = insertShape(t, ch.new);
        if (run && run.t === t && run.shape === shape && run.rows.length < 1000) run.rows.push(ch.new);
        else {
          flush();
          run = { t, shape, rows: [ch.new] };
        }
        continue;
      }
      flush();
      out.push(...this.change(ch));
    }
    flush();
    return out;
  }

  /** Any change but an INSERT run and DDL. */
  private change(ch: TxnChange): Statement[] {
    const w = this.opts.wedding;
    switch (ch.kind) {
      case 'message':
        return []; // restore points (DDL is taken apart before)
      case 'truncate':
        return [{ sql: truncateTables(ch.tables, ch.cascade, ch.restartSeqs) }];
      case 'touch': {
        const t = this.table(ch.schema, ch.table);
        // whole database: only a touch without scope is a change of its own (a DELETE)
        if (w === undefined ? ch.scope === undefined : !ownScope(ch.scope, w))
          return [
            { sql: deleteRow(t, ch.key), ...(hasKey(t, ch.key) ? { gone: { t, keys: [ch.key] } } : {}) },
          ];
        return [];
      }
      case 'row': {
        const t = this.table(ch.schema, ch.table);
        const label = `${ch.schema}.${ch.table}`;
        const found = (row: RowValues) => ({
          table: label,
          op: ch.op,
          key: JSON.stringify(keyOfRow(t, row)),
        });
        // whole database: every UPDATE and DELETE must find its row
        const expect = (row: RowValues) => (w === undefined ? found(row) : undefined);
        if (ch.op === 'INSERT') return ch.new ? [{ sql: insertRows(t, [ch.new]) }] : [];
        // a table whose replica identity names no key: the stream cannot say which row (pitr check tells)
        const key = ch.old ?? (t.key.length > 0 ? ch.new : undefined);
        if (!key || (ch.op === 'UPDATE' && !ch.new)) {
          this.result.missed.push({ table: label, op: ch.op, key: '(the stream names no key)' });
          return [];
        }
        if (ch.op === 'DELETE') return [{ sql: deleteRow(t, key), expect: expect(key) }];
        if (!ch.new) return [];
        // one wedding: an upsert, unless a toasted value is not in the stream (the row must be there)
        const toasted = Object.values(ch.new).includes(UNCHANGED_TOAST);
        if (w !== undefined && !toasted) return upsertRow(t, ch.new, ch.old).map((sql) => ({ sql }));
        const sql = updateRow(t, ch.new, ch.old);
        return sql ? [{ sql, expect: found(ch.old ?? ch.new) }] : [];
      }
    }
  }

  /** Applies one transaction: queued for the next round trip, or at once when it holds DDL. */
  async apply(txn: Txn): Promise<void> {
    this.result.changes += txn.changes.length;
    this.result.bytes += txn.changes.reduce((n, c) => n + changeBytes(c), 0);
    if (txn.sequences) Object.assign(this.result.sequences, txn.sequences);
    if (txn.changes.some((c) => c.kind === 'message' && c.prefix === DDL_MESSAGE_PREFIX)) {
      await this.flush();
      await this.applyWithDdl(txn);
      this.committed([txn]);
      return;
    }
    const statements = this.statements(txn);
    if (this.opts.commitEach) this.pending.push({ sql: 'BEGIN' });
    for (const st of statements) {
      // a one-wedding feed holds a touch for every UPDATE of any wedding: one DELETE for a run of them
      const prev = this.pending.at(-1);
      if (st.gone && prev?.gone?.t === st.gone.t) prev.gone.keys.push(...st.gone.keys);
      else this.pending.push(st);
    }
    if (this.opts.commitEach) this.pending.push({ sql: 'COMMIT' });
    this.pendingBytes += statements.reduce((n, s) => n + s.sql.length, 0);
    this.pendingTxns.push(txn);
    if (this.pendingBytes >= (this.opts.batchBytes ?? 1 << 20)) await this.flush();
  }

  /** Sends what is queued, in one round trip. */
  async flush(): Promise<void> {
    if (this.pending.length === 0) {
      // transactions that change nothing here (a restore point, another wedding's touches) still count
      if (this.pendingTxns.length > 0) this.committed(this.pendingTxns.splice(0));
      return;
    }
    const batch = this.opts.commitEach
      ? this.pending
      : [{ sql: 'BEGIN' }, ...this.pending, { sql: 'COMMIT' }];
    const txns = this.pendingTxns;
    this.pending = [];
    this.pendingTxns = [];
    this.pendingBytes = 0;
    try {
      const sql = batch.map((s) =>
        s.gone && s.gone.keys.length > 1 ? deleteKeys(s.gone.t, s.gone.keys) : s.sql,
      );
      const res = (await this.c.query(sql.join(';\n'))) as unknown as pg.QueryResult | pg.QueryResult[];
      const results = Array.isArray(res) ? res : [res];
      batch.forEach((s, i) => {
        if (s.expect && (results[i]?.rowCount ?? 0) === 0) this.result.missed.push(s.expect);
      });
    } catch (err) {
      // the failed transaction is rolled back (with commitEach, those before it stay committed)
      await this.c.query('ROLLBACK').catch(() => undefined);
      throw replayError(err, txns);
    }
    this.committed(txns);
  }

  private committed(txns: Txn[]) {
    this.result.txns += txns.length;
    const last = txns.at(-1)!;
    this.result.last = { commitLsn: last.commitLsn, commitTime: last.commitTime };
    this.opts.onCommitted?.(last, this.result.txns);
  }

  /** A transaction with DDL: one statement at a time, the catalog read again after each DDL. */
  private async applyWithDdl(txn: Txn): Promise<void> {
    await this.c.query('BEGIN');
    try {
      let lastDdl: string | undefined;
      for (const ch of txn.changes) {
        if (ch.kind === 'message' && ch.prefix === DDL_MESSAGE_PREFIX) {
          // the event trigger emits the client's whole query once per command it holds
          if (ch.content === lastDdl) continue;
          lastDdl = ch.content;
          await this.c.query(ch.content);
          this.tables = await readTargetTables(this.c);
          continue;
        }
        for (const s of this.statements({ ...txn, changes: [ch] })) {
          const r = await this.c.query(s.sql);
          if (s.expect && (r.rowCount ?? 0) === 0) this.result.missed.push(s.expect);
        }
      }
      await this.c.query('COMMIT');
    } catch (err) {
      await this.c.query('ROLLBACK').catch(() => undefined);
      this.tables = await readTargetTables(this.c).catch(() => this.tables);
      throw replayError(err, [txn]);
    }
  }
}

/** A statement the target refused: the stream and the target disagree, and will again. */
function replayError(err: unknown, txns: Txn[]): unknown {
  if (!(err instanceof pg.DatabaseError)) return err;
  const span =
    txns.length === 1 ? `transaction ${txns[0]!.xid}` : `transactions ${txns[0]!.xid}…${txns.at(-1)!.xid}`;
  return new FatalError(`replay failed in ${span} (commit ${txns.at(-1)!.commitLsn}): ${err.message}`, {
    cause: err,
    details: { xid: txns.at(-1)!.xid, commitLsn: txns.at(-1)!.commitLsn, code: err.code },
  });
}

/** Replays every transaction of `txns` into the database at url; the connection is its own. */
export async function replayTransactions(
  url: string,
  txns: AsyncIterable<Txn> | Iterable<Txn>,
  opts: ReplayOptions = {},
): Promise<ReplayResult> {
  const started = Date.now();
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = new Replayer(c, opts);
    await r.start();
    for await (const t of txns) await r.apply(t);
    await r.flush();
    r.result.ms = Date.now() - started;
    return r.result;
  } finally {
    await c.end().catch(() => undefined);
  }
}
