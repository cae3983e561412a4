/**
 * Change segments: continuous capture's objects, `changes/<source>/<endLsn>-<startLsn>` (each LSN as
 * 16 hex digits, so a listing is in LSN order). A manifest sealed under the meta key and MACed with
 * its name (as snapshots are), holding each key scope's part of the segment's transactions sealed
 * under that scope's own key (as inline content is), so erasing a wedding's key shreds its changes
 * too. docs/FORMAT.md §11.
 */
import { CorruptionError } from '../../errors.js';
import type { TxnChange } from '../pitr/types.js';
import { lsnValue } from '../pitr/types.js';
import type { MetaKeys } from './keys.js';
import { openManifest, sealManifest } from './snapshot.js';

export const CHANGES_PREFIX = 'changes/';

/** One transaction's changes of one scope, each with its position in the whole transaction. */
export interface TxnPart {
  xid: string;
  commitLsn: string;
  commitTime: string;
  changes: (TxnChange & { i: number })[];
}

export interface SegmentManifest {
  version: 1;
  source: string;
  /** The slot's position before this segment: the previous segment's endLsn when nothing is missing. */
  startLsn: string;
  /** Every transaction committed at or before this LSN (and after startLsn) is in this segment. */
  endLsn: string;
  firstCommit?: string | undefined;
  lastCommit?: string | undefined;
  /** When the capture read the stream: nothing else had committed by then (up to endLsn). */
  until: string;
  txns: number;
  /** Sequences' positions (`schema.name` as regclass text → last_value) when the segment was read. */
  sequences: Record<string, string>;
  /** Digest of the source's user tables and columns when the segment was read. */
  fingerprint: string;
  ddlTrigger: boolean;
  /** The schema changed without a DDL message (no event trigger): recovery may not cross this. */
  schemaBreak?: { at: string } | undefined;
  /** The slot was lost or recreated: the transactions between startLsn and endLsn are missing. */
  gap?: { reason: string } | undefined;
  /** Row changes whose tenant could not be resolved (kept in the platform part). */
  unresolved: number;
  /** Sealed part per key scope (scope name → base64 of the inline sealing, repo/inline.ts). */
  parts: Record<string, { sealed: string; size: number }>;
}

export type SegmentSummary = Omit<SegmentManifest, 'parts'> & { key: string; scopes: string[] };

const hex16 = (lsn: string) => lsnValue(lsn).toString(16).padStart(16, '0');
const fromHex16 = (h: string) => {
  const v = BigInt(`0x${h}`);
  return `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;
};

export const segmentsPrefix = (source: string): string => `${CHANGES_PREFIX}${source}/`;

export const segmentKey = (source: string, startLsn: string, endLsn: string): string =>
  `${segmentsPrefix(source)}${hex16(endLsn)}-${hex16(startLsn)}`;

/** The LSN range an object name gives, or undefined for a name that is not a segment's. */
export function segmentRange(key: string): { startLsn: string; endLsn: string } | undefined {
  const m = /\/([0-9a-f]{16})-([0-9a-f]{16})$/.exec(key);
  return m ? { endLsn: fromHex16(m[1]!), startLsn: fromHex16(m[2]!) } : undefined;
}

export function encodeSegment(keys: MetaKeys, key: string, manifest: SegmentManifest): Buffer {
  return sealManifest(keys, 'wedvault-segment-v1', key, manifest);
}

export function decodeSegment(keys: MetaKeys, key: string, bytes: Buffer): SegmentManifest {
  const m = openManifest(keys, 'wedvault-segment-v1', key, bytes) as SegmentManifest;
  const range = segmentRange(key);
  if (m.version !== 1 || !range || range.startLsn !== m.startLsn || range.endLsn !== m.endLsn) {
    throw new CorruptionError(`${key}: manifest does not match its name`, { object: key });
  }
  return m;
}
