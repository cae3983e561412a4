/**
 * A backed-up table's rows as COPY text: its segments, then each delta's, read ahead in order. A
 * table with deltas is merged on the way: a row is kept only from the newest of base and deltas
 * that names its key (a key a delta names but holds no row for was deleted).
 */
import type { ContentReader, ContentRef } from '../api.js';
import { CorruptionError } from '../../errors.js';
import { readLines, readRecords } from '../repo/records.js';
import type { PgTable, Segment } from '../tree.js';

/**
 * Segments read ahead of the consumer, refilled only once half are used: decodes go to the
 * encoder threads in batches of at least PREFETCH / 2 blobs instead of one per segment consumed.
 */
const PREFETCH = 64;
const SMALL_SEGMENT = 1 << 20;

export async function collect(reader: ContentReader, ref: ContentRef): Promise<Buffer> {
  // a stream per segment costs more than a segment's few kilobytes of rows
  if (reader.readBuffer) return reader.readBuffer(ref);
  const parts: Buffer[] = [];
  for await (const c of reader.read(ref)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** The segments of one source of a table's rows: -1 the base, 0… its deltas, oldest first. */
export interface Level {
  level: number;
  segments: AsyncIterable<Segment>;
}

/** Which of a table's segments a restore takes; null: none of the table. */
export type Pick = (t: PgTable) => ((s: Segment) => boolean) | null;

/**
 * The picked segments of a table, base and deltas, read from their record lists one at a time;
 * undefined when none is picked (known after reading up to the first one of each).
 */
export async function picked(reader: ContentReader, t: PgTable, pick: Pick): Promise<Level[] | undefined> {
  const take = pick(t);
  if (!take) return undefined;
  const sources: Level[] = [
    { level: -1, segments: tableSegments(reader, t) },
    ...(t.deltas ?? []).map((d, level) => ({ level, segments: readRecords<Segment>(reader, d.segmentList) })),
  ];
  const out: Level[] = [];
  for (const { level, segments } of sources) {
    const it = (async function* () {
      for await (const s of segments) if (take(s)) yield s;
    })();
    const first = await it.next();
    if (first.done) continue;
    out.push({
      level,
      segments: (async function* () {
        yield first.value;
        yield* it;
      })(),
    });
  }
  return out.length > 0 ? out : undefined;
}

/** Segments as one byte stream; small segments are fetched ahead, in order, so reads overlap. */
async function* segmentBytes(
  reader: ContentReader,
  segments: AsyncIterable<Segment>,
  counted: { rows: number },
): AsyncGenerator<Buffer> {
  const source = segments[Symbol.asyncIterator]();
  const ahead: (Promise<Buffer> | Segment)[] = [];
  let ended = false;
  const fill = async () => {
    while (!ended && ahead.length < PREFETCH) {
      const next = await source.next();
      if (next.done) {
        ended = true;
        break;
      }
      const seg = next.value;
      counted.rows += seg.rows;
      if (seg.ref.size > SMALL_SEGMENT) ahead.push(seg);
      else {
        const p = collect(reader, seg.ref);
        p.catch(() => undefined); // awaited below, in order
        ahead.push(p);
      }
    }
  };
  await fill();
  while (ahead.length > 0) {
    const item = ahead.shift()!;
    if (item instanceof Promise) yield await item;
    else for await (const chunk of reader.read(item.ref)) yield chunk as Buffer;
    if (ahead.length <= PREFETCH / 2) await fill();
  }
}

/**
 * The picked rows of a table as COPY text pieces (whole rows, any sizes); `counted.rows` grows by
 * the rows given.
 */
export async function* tableBytes(
  reader: ContentReader,
  t: PgTable,
  levels: Level[],
  counted: { rows: number },
): AsyncGenerator<Buffer> {
  if (!t.deltas?.length) {
    for (const l of levels) yield* segmentBytes(reader, l.segments, counted);
    return;
  }
  const { newest, hashes } = await changedKeys(reader, t);
  const keyOf = rowKey(t, hashes);
  for (const l of levels) {
    // a base row is kept when no delta names its key; a delta's row unless a later delta names it
    // (a row always bears a key its own delta names; should its text differ, it is kept, not lost)
    const keep =
      l.level < 0
        ? (key: string | undefined) => key === undefined || !newest.has(key)
        : (key: string | undefined) => key === undefined || (newest.get(key) ?? l.level) <= l.level;
    yield* keepRows(segmentBytes(reader, l.segments, { rows: 0 }), keep, keyOf, counted, t);
  }
}

/**
 * Every key the table's deltas name, with the newest delta naming it, and the keys' hashes: most
 * rows' keys are named by no delta, and a hash of their bytes says so without a string per row.
 */
async function changedKeys(
  reader: ContentReader,
  t: PgTable,
): Promise<{ newest: Map<string, number>; hashes: Set<number> }> {
  const newest = new Map<string, number>();
  const hashes = new Set<number>();
  for (const [i, d] of (t.deltas ?? []).entries()) {
    let n = 0;
    for await (const line of readLines(reader, d.keys)) {
      if (!line) continue;
      newest.set(line, i);
      const bytes = Buffer.from(line, 'utf8');
      hashes.add(fnv(FNV_START, bytes, 0, bytes.length) >>> 0);
      n++;
    }
    if (n !== d.keyCount) {
      throw new CorruptionError(`${t.schema}.${t.name}: a delta lists ${n} keys, its manifest ${d.keyCount}`);
    }
  }
  return { newest, hashes };
}

/** FNV-1a over bytes, continued from `h` (32 bits). */
const FNV_START = 0x811c9dc5;
function fnv(h: number, bytes: Buffer, start: number, end: number): number {
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 16777619);
  return h;
}

/**
 * The text of a COPY row's primary-key fields, tab-separated in key order (as the delta keys are);
 * undefined when the hash of those bytes is none of `hashes` (no delta names the key).
 */
function rowKey(
  t: PgTable,
  hashes: Set<number>,
): (row: Buffer, start: number, end: number) => string | undefined {
  const at = t.primaryKey.map((k) => t.columns.findIndex((c) => c.name === k));
  if (at.some((i) => i < 0)) throw new CorruptionError(`${t.schema}.${t.name}: a key column is not a column`);
  const last = Math.max(...at);
  const starts = new Array<number>(last + 1);
  const ends = new Array<number>(last + 1);
  const tab = Buffer.from([9]);
  return (row, start, end) => {
    let p = start;
    for (let f = 0; f <= last; f++) {
      starts[f] = p;
      while (p < end && row[p] !== 9) p++;
      ends[f] = p;
      p++;
    }
    let h = FNV_START;
    for (const [j, i] of at.entries()) {
      if (j > 0) h = fnv(h, tab, 0, 1);
      h = fnv(h, row, starts[i]!, ends[i]!);
    }
    if (!hashes.has(h >>> 0)) return undefined;
    if (at.length === 1) return row.toString('utf8', starts[at[0]!], ends[at[0]!]);
    return at.map((i) => row.toString('utf8', starts[i], ends[i])).join('\t');
  };
}

/** Rows whose key `keep` accepts, in the pieces they came in. */
async function* keepRows(
  pieces: AsyncIterable<Buffer>,
  keep: (key: string | undefined) => boolean,
  keyOf: (row: Buffer, start: number, end: number) => string | undefined,
  counted: { rows: number },
  t: PgTable,
): AsyncGenerator<Buffer> {
  let carry: Buffer | undefined;
  for await (const p of pieces) {
    const piece = carry ? Buffer.concat([carry, p]) : p;
    carry = undefined;
    const out: Buffer[] = [];
    let start = 0;
    let run = 0; // start of the rows kept since the last one dropped
    for (let nl = piece.indexOf(10); nl >= 0; nl = piece.indexOf(10, start)) {
      if (keep(keyOf(piece, start, nl))) counted.rows++;
      else {
        if (start > run) out.push(piece.subarray(run, start));
        run = nl + 1;
      }
      start = nl + 1;
    }
    if (start > run) out.push(piece.subarray(run, start));
    if (start < piece.length) carry = piece.subarray(start);
    if (out.length > 0) yield out.length === 1 ? out[0]! : Buffer.concat(out);
  }
  if (carry) throw new CorruptionError(`${t.schema}.${t.name}: rows end inside a row`);
}

/** A table's segments in dump order, one at a time: from its record list, or inline in older snapshots. */
export async function* tableSegments(reader: ContentReader, t: PgTable): AsyncGenerator<Segment> {
  if (t.segments) yield* t.segments;
  if (t.segmentList) yield* readRecords<Segment>(reader, t.segmentList);
}
