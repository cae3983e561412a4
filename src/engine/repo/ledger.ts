/**
 * The erasure ledger: one object per erasure (`ledger/<erasureId>`), in the repository itself so
 * it outlives the catalog. Every later backup skips the scopes it names, and every restore of an
 * older point leaves them out (their keys are gone, so their blobs could not be read anyway; the
 * ledger says that this is by design, and which rows therefore are not there).
 */
import { CorruptionError } from '../../errors.js';
import type { Storage } from '../../storage/types.js';
import { getBuffer } from '../../storage/types.js';
import { open, seal } from './crypto.js';
import type { MetaKeys } from './keys.js';

export const LEDGER_PREFIX = 'ledger/';

export interface LedgerEntry {
  version: 1;
  erasureId: string;
  /** The key scope erased: `wedding:<id>` or `supplier:<id>`. */
  scope: string;
  reason: string;
  time: string;
}

const aad = (object: string) => `wedvault-ledger-v1:${object}`;
export const ledgerKey = (erasureId: string): string => `${LEDGER_PREFIX}${erasureId}`;

export function encodeLedgerEntry(keys: Pick<MetaKeys, 'meta'>, e: LedgerEntry): Buffer {
  return seal(keys.meta, Buffer.from(JSON.stringify(e)), aad(ledgerKey(e.erasureId)));
}

/** Opens a ledger object; sealed under the meta key with its object key as AAD, so it cannot be moved. */
export function decodeLedgerEntry(keys: Pick<MetaKeys, 'meta'>, object: string, bytes: Buffer): LedgerEntry {
  const plain = open(keys.meta, bytes, aad(object));
  if (!plain) throw new CorruptionError(`${object}: ledger entry fails authentication`, { object });
  const e = JSON.parse(plain.toString('utf8')) as LedgerEntry;
  if (e.version !== 1 || typeof e.scope !== 'string' || ledgerKey(e.erasureId) !== object)
    throw new CorruptionError(`${object}: unknown ledger entry structure`, { object });
  return e;
}

export async function readLedger(storage: Storage, keys: Pick<MetaKeys, 'meta'>): Promise<LedgerEntry[]> {
  const out: LedgerEntry[] = [];
  for await (const o of storage.list(LEDGER_PREFIX))
    out.push(decodeLedgerEntry(keys, o.key, await getBuffer(storage, o.key)));
  return out.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
}
