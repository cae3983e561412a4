/**
 * Committed transactions from a logical slot (test_decoding, which needs only the REPLICATION
 * attribute): every line between BEGIN and COMMIT gathered into one `Txn` with its commit LSN and
 * time. Peeking consumes nothing: the caller advances the slot once what it read is stored.
 */
import { StringDecoder } from 'node:string_decoder';
import pg from 'pg';
import { TransientError } from '../../errors.js';
import { parseChange, unescapeCopy } from '../postgres/changes.js';
import { copyOut } from '../postgres/copy-out.js';
import type { RowValues, Txn, TxnChange } from './types.js';

export interface PeekOptions {
  /** Stop after the transaction that passes this many rows of output (the server ends on a commit). */
  uptoChanges?: number | undefined;
  /** Only transactions committed at or before this LSN. */
  uptoLsn?: string | undefined;
}

const MESSAGE = /^message: transactional: ([01]) prefix: (.*?), sz: (\d+) content:/s;
const COMMIT = /^COMMIT (\d+) \(at (.+)\)$/;

/** `2026-12-08 02:20:00.123456+00` (ISO DateStyle, UTC) as `2026-12-08T02:20:00.123456Z`. */
export function commitTimeIso(text: string): string {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)\+00$/.exec(text);
  if (!m) throw new TransientError(`commit time not in ISO UTC form: ${text}`);
  return `${m[1]}T${m[2]}Z`;
}

const values = (t: Map<string, string | null> | undefined): RowValues | undefined =>
  t && Object.fromEntries(t);

/** One decoded line inside a transaction as a change; undefined for lines that are not changes. */
export function changeOf(line: string): TxnChange | undefined {
  const msg = MESSAGE.exec(line);
  if (msg) return { kind: 'message', prefix: msg[2]!, content: line.slice(msg[0].length) };
  const c = parseChange(line);
  if (!c) return undefined;
  if (c.action === 'TRUNCATE') {
    return {
      kind: 'truncate',
      tables: c.tables,
      cascade: /\bcascade\b/.test(line.slice(line.lastIndexOf('TRUNCATE:'))),
      restartSeqs: /\brestart_seqs\b/.test(line.slice(line.lastIndexOf('TRUNCATE:'))),
    };
  }
  const [schema, table] = c.tables[0]!;
  const out: TxnChange = { kind: 'row', op: c.action, schema, table };
  const n = values(c.new);
  const o = values(c.old);
  if (n) out.new = n;
  if (o) out.old = o;
  return out;
}

/**
 * The slot's committed transactions in commit order, read through COPY so a long stream is never
 * held whole. The session's output settings must be pinned (`pinOutputSettings`): values and commit
 * times are printed in them.
 */
export async function* peekTransactions(
  client: pg.ClientBase,
  slot: string,
  opts: PeekOptions = {},
): AsyncGenerator<Txn> {
  const upto = opts.uptoLsn ? `${pg.escapeLiteral(opts.uptoLsn)}::pg_lsn` : 'NULL';
  const n = opts.uptoChanges ? String(Math.floor(opts.uptoChanges)) : 'NULL';
  const source = client.query(
    copyOut(
      `COPY (SELECT lsn, data FROM pg_logical_slot_peek_changes(${pg.escapeLiteral(slot)}, ${upto}, ${n},
         'include-xids', '1', 'include-timestamp', '1', 'skip-empty-xacts', '0')) TO STDOUT`,
    ),
  );
  const text = new StringDecoder('utf8');
  let carry = '';
  let open: { xid: string; changes: TxnChange[] } | undefined;
  for await (const chunk of source as AsyncIterable<Buffer>) {
    const lines = (carry + text.write(chunk)).split('\n');
    carry = lines.pop()!;
    for (const l of lines) {
      const tab = l.indexOf('\t');
      const lsn = l.slice(0, tab);
      const data = unescapeCopy(l.slice(tab + 1));
      if (data.startsWith('BEGIN ')) {
        open = { xid: data.slice(6), changes: [] };
        continue;
      }
      const commit = COMMIT.exec(data);
      if (commit) {
        if (!open || open.xid !== commit[1])
          throw new TransientError(`change stream: COMMIT ${commit[1]} without its BEGIN`);
        // empty ones skipped here: with skip-empty-xacts, PostgreSQL 15 prints a transaction's
        // leading logical message before its BEGIN, and a DDL-only transaction without BEGIN or COMMIT
        if (open.changes.length > 0)
          yield {
            xid: open.xid,
            commitLsn: lsn,
            commitTime: commitTimeIso(commit[2]!),
            changes: open.changes,
          };
        open = undefined;
        continue;
      }
      // a non-transactional message outside any transaction: nothing to replay
      if (!open) continue;
      const change = changeOf(data);
      if (change) open.changes.push(change);
    }
  }
  if (carry) throw new TransientError('change stream ended inside a line');
  if (open) throw new TransientError(`change stream ended inside transaction ${open.xid}`);
}
