/**
 * Record lists: newline-delimited JSON stored as content, for lists that grow with the data (a
 * table's segments). They are written while the data is, and read back one record at a time, so
 * neither a backup nor a restore holds a whole list.
 */
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { CorruptionError } from '../../errors.js';
import {
  PLATFORM_SCOPE,
  type ContentReader,
  type ContentRef,
  type ContentWriter,
  type KeyScope,
} from '../api.js';

/** Records are handed to the writer in pieces of about this many bytes. */
const PIECE = 64 * 1024;

export class RecordListWriter<T> {
  private readonly stream = new PassThrough({ highWaterMark: PIECE });
  private readonly ref: Promise<ContentRef>;
  private lines: string[] = [];
  private length = 0;
  count = 0;

  constructor(writer: ContentWriter, scope: KeyScope = PLATFORM_SCOPE) {
    this.ref = writer.write(scope, this.stream, { compress: true }).then(
      (ref) => ({ ...ref, records: true as const }),
      (err: unknown) => {
        // wakes a `drain` wait in push() with the writer's error instead of hanging
        this.stream.destroy(err as Error);
        throw err;
      },
    );
    this.ref.catch(() => undefined); // surfaced by end()
  }

  async push(record: T): Promise<void> {
    const line = JSON.stringify(record);
    this.lines.push(line);
    this.length += line.length + 1;
    this.count++;
    if (this.length >= PIECE) await this.send();
  }

  /** The list's content reference, once every record is stored. */
  async end(): Promise<ContentRef> {
    await this.send();
    this.stream.end();
    return this.ref;
  }

  /** Abandons the list (the data it describes failed). */
  destroy(err: Error): void {
    this.stream.destroy(err);
  }

  private async send(): Promise<void> {
    if (this.lines.length === 0) return;
    const piece = Buffer.from(`${this.lines.join('\n')}\n`);
    this.lines = [];
    this.length = 0;
    if (!this.stream.write(piece)) await once(this.stream, 'drain');
  }
}

/** The lines of a content (without their newlines), one at a time; the text is never held whole. */
export async function* readLines(reader: ContentReader, ref: ContentRef): AsyncGenerator<string> {
  for await (const text of readLineRuns(reader, ref)) {
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    yield* lines;
  }
}

/**
 * A content's text in runs of whole lines, as many as one read of it holds (each run ends with a
 * newline, but for a last line without one). Reads are cut at their last newline byte, which is
 * never part of a multi-byte character, so a run is decoded in one call. `latin1` gives a byte per
 * character (faster; for scans of ASCII structure, and back to the bytes with Buffer.from).
 */
export async function* readLineRuns(
  reader: ContentReader,
  ref: ContentRef,
  encoding: 'utf8' | 'latin1' = 'utf8',
): AsyncGenerator<string> {
  let carry: Buffer | undefined;
  for await (const piece of reader.read(ref)) {
    const chunk = carry ? Buffer.concat([carry, piece as Buffer]) : (piece as Buffer);
    const end = chunk.lastIndexOf(0x0a) + 1;
    carry = end < chunk.length ? Buffer.from(chunk.subarray(end)) : undefined;
    if (end > 0) yield chunk.toString(encoding, 0, end);
  }
  if (carry) yield carry.toString(encoding);
}

/** The records of a list, one at a time, in the order they were written. */
export async function* readRecords<T>(reader: ContentReader, ref: ContentRef): AsyncGenerator<T> {
  for await (const batch of readRecordBatches<T>(reader, ref)) yield* batch;
}

/** The records of a list in order, as many at a time as one read of the list holds. */
export async function* readRecordBatches<T>(reader: ContentReader, ref: ContentRef): AsyncGenerator<T[]> {
  let line = 0;
  for await (const text of readLineRuns(reader, ref)) {
    const out: T[] = [];
    for (const record of text.split('\n')) {
      line++;
      if (record) out.push(parseRecord<T>(ref, record, line));
    }
    line--; // the run's final newline starts no line
    yield out;
  }
}

/** One record of a list; a CorruptionError naming the list (and the line, when known) otherwise. */
export function parseRecord<T>(ref: ContentRef, text: string, line?: number): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    const where = line === undefined ? 'a record' : `line ${line}`;
    throw new CorruptionError(`record list in ${ref.scope}: ${where} is not JSON`);
  }
}

const BLOBS_KEY = '"blobs":[';

/**
 * The blob ids that a run of records (JSON.stringify output, one per line; UTF-8 or its bytes as
 * latin1) names in their `"blobs":[…]` arrays, in order, found without parsing the records;
 * undefined when the run holds anything the scan does not read exactly (a nested record list, an
 * id of another length), for the caller to parse instead. Inside a JSON string every quote is
 * escaped, so the key can only be one. Ids are taken as written: one that is not hex names no blob.
 */
export function scanBlobIds(text: string): string[] | undefined {
  if (text.includes('"records":')) return undefined;
  const ids: string[] = [];
  for (let at = text.indexOf(BLOBS_KEY); at >= 0; at = text.indexOf(BLOBS_KEY, at)) {
    const before = text.charCodeAt(at - 1);
    if (before !== 0x7b /* { */ && before !== 0x2c /* , */) return undefined;
    let p = at + BLOBS_KEY.length;
    while (text[p] !== ']') {
      if (text[p] !== '"' || text[p + 65] !== '"') return undefined;
      ids.push(text.slice(p + 1, p + 65));
      p += 66;
      if (text[p] === ',') p++;
      else if (text[p] !== ']') return undefined;
    }
    at = p;
  }
  return ids;
}
