/**
 * Record lists: newline-delimited JSON stored as content, for lists that grow with the data (a
 * table's segments). They are written while the data is, and read back one record at a time, so
 * neither a backup nor a restore holds a whole list.
 */
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
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
  for await (const lines of readLineBatches(reader, ref)) yield* lines;
}

/** The lines of a content in order, as many at a time as one read of it holds. */
async function* readLineBatches(reader: ContentReader, ref: ContentRef): AsyncGenerator<string[]> {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  for await (const chunk of reader.read(ref)) {
    const lines = (rest + decoder.write(chunk as Buffer)).split('\n');
    rest = lines.pop()!;
    yield lines;
  }
  rest += decoder.end();
  if (rest) yield [rest];
}

/** The records of a list, one at a time, in the order they were written. */
export async function* readRecords<T>(reader: ContentReader, ref: ContentRef): AsyncGenerator<T> {
  for await (const batch of readRecordBatches<T>(reader, ref)) yield* batch;
}

/** The records of a list in order, as many at a time as one read of the list holds. */
export async function* readRecordBatches<T>(reader: ContentReader, ref: ContentRef): AsyncGenerator<T[]> {
  let line = 0;
  for await (const lines of readLineBatches(reader, ref)) {
    const out: T[] = [];
    for (const text of lines) {
      line++;
      if (!text) continue;
      try {
        out.push(JSON.parse(text) as T);
      } catch {
        throw new CorruptionError(`record list in ${ref.scope}: line ${line} is not JSON`);
      }
    }
    yield out;
  }
}
