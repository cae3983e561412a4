/**
 * The recoverable window of a source on one copy: from the oldest base point whose consistent
 * point the segments reach, to the newest segment; gaps and schema breaks named (CONTRACT: built by
 * the capture work; this signature is what the API codes against).
 */
import type { Repository } from '../repo/repository.js';

/** A database recovery point usable as a base: its change slot's consistent point and time. */
export interface BasePoint {
  id: string;
  lsn: string;
  time: string;
}

export interface PitrGap {
  /** Last LSN/time covered before the hole, first after it. */
  afterLsn: string;
  beforeLsn: string;
  from: string;
  to: string;
}

export interface SchemaBreak {
  /** When the capture saw the schema change without a DDL message (no event trigger). */
  at: string;
  /** The first base point after it; undefined while none exists. */
  basePointId?: string | undefined;
  baseTime?: string | undefined;
}

export interface PitrWindow {
  /** Earliest and latest recoverable time (ISO); undefined when nothing is recoverable. */
  earliest?: string | undefined;
  latest?: string | undefined;
  latestLsn?: string | undefined;
  /** Commit time of the newest transaction in the newest segment, and when that segment was sealed. */
  newestSegmentAt?: string | undefined;
  segments: number;
  gaps: PitrGap[];
  schemaBreaks: SchemaBreak[];
}

export async function pitrWindow(repo: Repository, source: string, bases: BasePoint[]): Promise<PitrWindow> {
  void repo;
  void source;
  void bases;
  throw new Error('pitrWindow: not built yet');
}
