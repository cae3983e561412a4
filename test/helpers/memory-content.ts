/**
 * An in-memory stand-in for the repository (ContentWriter + ContentReader), so sources can be
 * tested and timed against real databases without the cost or the bugs of chunking and encryption.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ContentReader, ContentRef, ContentWriter, KeyScope, WriteStats } from '../../src/engine/api.js';
import { tableSegments } from '../../src/engine/postgres/table-rows.js';
import type { PgTable, Segment } from '../../src/engine/tree.js';
import { NotFoundError } from '../../src/errors.js';

export interface MemoryContentOptions {
  /** Keep the bytes (default true); false only counts them, for timing the source alone. */
  keep?: boolean;
}

export class MemoryContent implements ContentWriter, ContentReader {
  readonly stats: WriteStats = { bytesRead: 0, bytesNew: 0, bytesStored: 0, blobsTotal: 0, blobsNew: 0 };
  /** Every write call, in order of completion: which scope got how many bytes. */
  readonly writes: { scope: KeyScope; size: number }[] = [];
  private readonly blobs = new Map<string, Buffer>();
  private next = 0;

  constructor(private readonly opts: MemoryContentOptions = {}) {}

  async write(scope: KeyScope, data: Readable | AsyncIterable<Buffer>): Promise<ContentRef> {
    const parts: Buffer[] = [];
    let size = 0;
    for await (const chunk of data) {
      size += chunk.length;
      if (this.opts.keep !== false) parts.push(chunk);
    }
    // one blob per write: ids only need to be unique here, not content addresses
    const id = createHash('sha256').update(`${this.next++}:${scope}`).digest('hex');
    if (this.opts.keep !== false) this.blobs.set(id, Buffer.concat(parts, size));
    this.stats.bytesRead += size;
    this.stats.bytesNew += size;
    this.stats.bytesStored += size;
    this.stats.blobsTotal++;
    this.stats.blobsNew++;
    this.writes.push({ scope, size });
    return { scope, blobs: [id], size };
  }

  async flush(): Promise<void> {}

  read(ref: ContentRef): Readable {
    const bufs = ref.blobs.map((id) => {
      const b = this.blobs.get(id);
      if (!b) throw new NotFoundError(`blob ${id} is not in the memory store`);
      return b;
    });
    return Readable.from(bufs);
  }

  /** The whole stream as one Buffer (tests only). */
  async readBuffer(ref: ContentRef): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const c of this.read(ref)) parts.push(c as Buffer);
    return Buffer.concat(parts);
  }
}

/** A table's segments read back from its record list, as one array (tests only). */
export async function segmentsOf(reader: ContentReader, t: PgTable): Promise<Segment[]> {
  const out: Segment[] = [];
  for await (const s of tableSegments(reader, t)) out.push(s);
  return out;
}
