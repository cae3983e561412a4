/**
 * The recoverable window of a source on one copy: from the oldest base point whose consistent
 * point the segments reach, to the newest segment; gaps and schema breaks named (CONTRACT: built by
 * the capture work; this signature is what the API codes against).
 */
import type { Repository } from '../repo/repository.js';
import type { SegmentSummary } from '../repo/segments.js';
import { compareLsn } from './types.js';

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

/**
 * The window on one copy: segments are read in LSN order and cut into runs where one does not start
 * where the previous ended (or records a gap); a base point opens the window when a run covers its
 * consistent point, and the window reaches the `until` of that run's newest segment.
 */
export async function pitrWindow(repo: Repository, source: string, bases: BasePoint[]): Promise<PitrWindow> {
  const keys = await repo.listSegmentKeys(source);
  const out: PitrWindow = { segments: keys.length, gaps: [], schemaBreaks: [] };
  const runs: { start: string; end: string; until: string }[] = [];
  let prev: SegmentSummary | undefined;
  for (const key of keys) {
    const s = await repo.segmentSummary(key);
    const run = runs.at(-1);
    if (s.gap || !prev || !run || s.startLsn !== prev.endLsn) {
      if (prev && (s.gap || s.startLsn !== prev.endLsn)) {
        out.gaps.push({
          afterLsn: prev.endLsn,
          beforeLsn: s.gap ? s.endLsn : s.startLsn,
          from: prev.until,
          to: s.until,
        });
      }
      runs.push({ start: s.gap ? s.endLsn : s.startLsn, end: s.endLsn, until: s.until });
    } else {
      run.end = s.endLsn;
      run.until = s.until;
    }
    if (s.schemaBreak) out.schemaBreaks.push({ at: s.schemaBreak.at });
    prev = s;
  }
  if (prev) {
    out.newestSegmentAt = prev.until;
    out.latestLsn = prev.endLsn;
  }
  const sorted = [...bases].sort((a, b) => compareLsn(a.lsn, b.lsn));
  for (const b of out.schemaBreaks) {
    const next = sorted.find((p) => Date.parse(p.time) >= Date.parse(b.at));
    if (next) {
      b.basePointId = next.id;
      b.baseTime = next.time;
    }
  }
  for (const base of sorted) {
    const run = runs.find((r) => compareLsn(r.start, base.lsn) <= 0 && compareLsn(base.lsn, r.end) <= 0);
    if (!run) continue;
    if (out.earliest === undefined || Date.parse(base.time) < Date.parse(out.earliest))
      out.earliest = base.time;
    if (out.latest === undefined || Date.parse(run.until) > Date.parse(out.latest)) out.latest = run.until;
  }
  return out;
}
