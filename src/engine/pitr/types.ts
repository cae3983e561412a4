/**
 * The change stream's shapes, shared by continuous capture (which writes them into change
 * segments) and recovery (which replays them): one committed transaction of the source, as the
 * logical slot decoded it, and what a segment records beside its transactions.
 */

/** A row's column values as the slot printed them (text; null for SQL NULL; UNCHANGED_TOAST for a toasted value an UPDATE left alone). */
export type RowValues = Record<string, string | null>;

export type TxnChange =
  | {
      kind: 'row';
      op: 'INSERT' | 'UPDATE' | 'DELETE';
      schema: string;
      table: string;
      /** INSERT and UPDATE: the new row (an UPDATE's unchanged toasted values are UNCHANGED_TOAST). */
      new?: RowValues;
      /** DELETE: the old key (or the whole old row with REPLICA IDENTITY FULL); UPDATE: the old key when the key changed. */
      old?: RowValues;
    }
  | { kind: 'truncate'; tables: [schema: string, table: string][]; cascade: boolean; restartSeqs: boolean }
  /** A transactional logical message: DDL (`DDL_MESSAGE_PREFIX`) or a named restore point. */
  | { kind: 'message'; prefix: string; content: string }
  /**
   * Written by capture, read by one-wedding recovery only: a row of a tenant table was updated or
   * deleted and the stream does not say which tenant owned it before (an UPDATE or DELETE names
   * only the key). `scope` is the row's owner after an UPDATE; absent after a DELETE or when
   * unknown. A one-wedding replay deletes the key from its wedding's rows when `scope` is not
   * its wedding's (the row left it, or was deleted); a whole-database replay applies a touch
   * without `scope` as a DELETE by key and ignores the others (the UPDATE itself is in its scope).
   */
  | { kind: 'touch'; schema: string; table: string; key: RowValues; scope?: string };

/** One committed transaction; applied whole or not at all. */
export interface Txn {
  xid: string;
  /** The commit record's end: the slot's position once this transaction is consumed. */
  commitLsn: string;
  /** Commit time, ISO 8601 in UTC with microseconds. */
  commitTime: string;
  changes: TxnChange[];
  /**
   * Optional (added by the recovery work): sequences' positions (a name `::regclass` reads →
   * last_value) recorded by the segment this transaction ends; a feed sets it on a segment's last
   * transaction. Recovery sets each sequence to at least the newest position it saw.
   */
  sequences?: Record<string, string> | undefined;
}

/** The change stream's source name: segments live under `changes/<source>/` (the one database source). */
export const PITR_SOURCE = 'postgres';

/** Logical message prefixes wedvault writes into the stream. */
export const DDL_MESSAGE_PREFIX = 'wedvault_ddl';
export const RESTORE_POINT_PREFIX = 'wedvault_restore_point';

/** LSNs (`16/B374D848`) as numbers that compare: 64-bit positions fit a bigint. */
export function lsnValue(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  if (
    hi === undefined ||
    lo === undefined ||
    !/^[0-9A-Fa-f]{1,8}$/.test(hi) ||
    !/^[0-9A-Fa-f]{1,8}$/.test(lo)
  ) {
    throw new TypeError(`not an LSN: ${lsn}`);
  }
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

export const compareLsn = (a: string, b: string): number => {
  const d = lsnValue(a) - lsnValue(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
};
