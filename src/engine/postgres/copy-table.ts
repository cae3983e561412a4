/**
 * A table's rows into the repository: COPY output ordered by (tenant, key), cut at every tenant
 * change into segments (one wedding's rows never share a chunk), or a delta of the changed rows.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import pg from 'pg';
import { CorruptionError } from '../../errors.js';
import {
  classScope,
  isErased,
  PLATFORM_SCOPE,
  supplierScope,
  weddingScope,
  type ContentRef,
  type WriteHint,
  type ContentWriter,
  type KeyScope,
  writeBuffer,
} from '../api.js';
import { RecordListWriter } from '../repo/records.js';
import type { PgTable, Segment, TableDelta } from '../tree.js';
import type { PgTableInfo } from './catalog.js';
import type { TableChanges } from './changes.js';
import { copyOut } from './copy-out.js';
import { dropFirstField, TenantSplitter } from './split.js';
import { ROW, rowsQuery } from './tenant-rows.js';

function scopeOf(t: PgTableInfo, tenant: string | null): KeyScope {
  if (tenant === null || t.scopeKind === 'platform') return PLATFORM_SCOPE;
  const scope = t.scopeKind === 'wedding' ? weddingScope(tenant) : supplierScope(tenant);
  return t.dataClass ? classScope(scope, t.dataClass) : scope;
}

/**
 * One tenant and scope string per tenant for the whole backup, shared by every table's segments:
 * a wedding appears in a dozen tables, and a table has one segment per wedding.
 */
export class Interned {
  /** Rows left out because their scope was erased (the ledger), by scope. */
  readonly skipped = new Map<KeyScope, number>();

  /** `erased`: scopes of the erasure ledger, whose rows a backup leaves out. */
  constructor(private readonly erased: ReadonlySet<string> = new Set()) {}

  /** True (and counted) when a run's rows belong to an erased scope. */
  skip(scope: KeyScope, rows: number): boolean {
    if (!isErased(scope, this.erased)) return false;
    this.skipped.set(scope, (this.skipped.get(scope) ?? 0) + rows);
    return true;
  }

  /** By scope kind and data class (`wedding/guest-pii`), then tenant. */
  private readonly seen = new Map<string, Map<string | null, { tenant: string | null; scope: KeyScope }>>();

  of(t: PgTableInfo, tenant: string | null): { tenant: string | null; scope: KeyScope } {
    const key = t.dataClass ? `${t.scopeKind}/${t.dataClass}` : t.scopeKind;
    let kind = this.seen.get(key);
    if (!kind) this.seen.set(key, (kind = new Map()));
    let hit = kind.get(tenant);
    if (!hit) {
      hit = { tenant, scope: scopeOf(t, tenant) };
      kind.set(tenant, hit);
    }
    return hit;
  }
}

type Pending = Omit<Segment, 'ref'> & { ref?: ContentRef };

/**
 * A table's segments on their way into the repository: each gathered in memory while small (one
 * blob), streamed through the chunker once big, at most `inFlight` waiting on the writer, and
 * listed in order in the table's record list as they are stored.
 */
class SegmentSink {
  // Segments wait here until stored, then go to the table's record list in order: the list, not
  // memory, holds a table's (tens of thousands of) segments.
  private readonly segments: Pending[] = [];
  private readonly list: RecordListWriter<Segment>;
  /** writes not yet stored; a failed one stays here, so the wait below rethrows its error */
  private readonly inflight = new Set<Promise<unknown>>();
  private seg: Pending | undefined;
  private parts: Buffer[] = [];
  private buffered = 0;
  private stream: PassThrough | undefined;
  /** A segment below this size is one blob: gathered and handed over whole, without a stream. */
  private readonly gather: number;
  bytes = 0;

  constructor(
    private readonly writer: ContentWriter,
    private readonly inFlight: number,
    /** How a segment gathered in memory is written (a delta's few rows per wedding go inline). */
    private readonly smallSegments: WriteHint,
  ) {
    this.list = new RecordListWriter<Segment>(writer);
    this.gather = writer.smallLimit ?? 64 * 1024;
  }

  /** The tenant of the current segment (undefined before the first). */
  get tenant(): string | null | undefined {
    return this.seg?.tenant;
  }

  /** Ends the current segment and starts one for `tenant`. */
  async start(tenant: string | null, scope: KeyScope): Promise<void> {
    await this.close();
    this.seg = { tenant, scope, rows: 0 };
    this.segments.push(this.seg);
  }

  async append(bytes: Buffer, rows: number): Promise<void> {
    const seg = this.seg!;
    seg.rows += rows;
    if (!this.stream) {
      this.parts.push(bytes);
      this.buffered += bytes.length;
      if (this.buffered < this.gather) return;
      // too big for one blob: from here on it streams through the chunker
      const stream = (this.stream = new PassThrough({ highWaterMark: 64 << 10 }));
      this.track(seg, this.writer.write(seg.scope, stream), stream);
      const gathered = this.parts;
      this.parts = [];
      this.buffered = 0;
      for (const b of gathered) if (!stream.write(b)) await once(stream, 'drain');
      return;
    }
    if (!this.stream.write(bytes)) await once(this.stream, 'drain');
  }

  /** Ends the current segment; waits while more than inFlight segments are being stored. */
  async close(): Promise<void> {
    const seg = this.seg;
    if (!seg) return;
    if (this.stream) this.stream.end();
    else this.track(seg, writeBuffer(this.writer, seg.scope, this.parts, this.smallSegments));
    this.seg = undefined;
    this.stream = undefined;
    this.parts = [];
    this.buffered = 0;
    // bounded memory: never more than inFlight segments waiting on the writer
    while (this.inflight.size > this.inFlight) await Promise.race(this.inflight);
    await this.drain();
  }

  /** Every segment stored and listed: the record list's reference. */
  async end(): Promise<ContentRef> {
    await Promise.all(this.inflight);
    await this.drain();
    return this.list.end();
  }

  destroy(err: Error): void {
    this.stream?.destroy(err);
    this.list.destroy(err);
  }

  private track(s: Pending, write: Promise<ContentRef>, feed?: PassThrough): void {
    const p: Promise<unknown> = write.then(
      (ref) => {
        s.ref = ref;
        this.inflight.delete(p);
      },
      (err: unknown) => {
        // wakes a `drain` wait in append() with the writer's error instead of hanging
        feed?.destroy(err as Error);
        throw err;
      },
    );
    p.catch(() => undefined); // surfaced by Promise.race / Promise.all above
    this.inflight.add(p);
  }

  private async drain(): Promise<void> {
    while (this.segments[0]?.ref) {
      const done = this.segments.shift()!;
      this.bytes += done.ref!.size;
      await this.list.push(done as Segment);
    }
  }
}

/** Copies a table (or the rows the query picks) into segments, one per tenant run, listed in a record list. */
export async function copyTable(
  client: pg.ClientBase,
  t: PgTableInfo,
  writer: ContentWriter,
  inFlight: number,
  interned: Interned,
  query = rowsQuery(t, { tenantField: true }),
  /** How a segment gathered in memory is written (a delta's few rows per wedding go inline). */
  smallSegments: WriteHint = {},
): Promise<PgTable> {
  // an FK-reached table's query puts the resolved tenant first (tenant-rows.ts)
  const via = t.tenantVia !== undefined;
  const column = via ? 0 : t.tenantColumn ? t.columns.findIndex((c) => c.name === t.tenantColumn) : -1;
  const splitter = new TenantSplitter(column >= 0 ? column : undefined);
  const digest = createHash('sha256');
  const sink = new SegmentSink(writer, inFlight, smallSegments);
  let rowCount = 0;
  try {
    const source = client.query(copyOut(`COPY (${query}) TO STDOUT`));
    for await (const chunk of source as AsyncIterable<Buffer>) {
      for (const cut of splitter.push(chunk)) {
        const run = via ? { ...cut, bytes: dropFirstField(cut.bytes) } : cut;
        const { tenant, scope } = interned.of(t, run.tenant);
        if (interned.skip(scope, run.rows)) continue;
        digest.update(run.bytes);
        if (sink.tenant === undefined || run.tenant !== sink.tenant) await sink.start(tenant, scope);
        rowCount += run.rows;
        await sink.append(run.bytes, run.rows);
      }
    }
    if (splitter.leftover > 0) throw new CorruptionError(`COPY of ${t.schema}.${t.name} ended inside a row`);
    await sink.close();
  } catch (err) {
    sink.destroy(err as Error);
    throw err;
  }
  const segmentList = await sink.end();
  return { ...t, rowCount, digest: digest.digest('hex'), segmentList, bytes: sink.bytes };
}

/** What an unchanged table carries over from the parent backup: its segments (and deltas) are the parent's. */
export const pick = (
  t: PgTable,
): Pick<PgTable, 'rowCount' | 'digest' | 'segmentList' | 'segments' | 'bytes' | 'deltas'> => ({
  rowCount: t.rowCount,
  digest: t.digest,
  segmentList: t.segmentList,
  segments: t.segments,
  bytes: t.bytes,
  deltas: t.deltas,
});

/** A PostgreSQL array literal of texts. */
const textArray = (values: string[]): string =>
  `{${values.map((v) => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(',')}}`;

/**
 * A table's changed rows as a delta on its parent: the keys the change slot named (written as
 * PostgreSQL prints them, so a restore compares them with the key fields of older rows), the rows
 * with those keys in this snapshot, and the table's row count.
 */
export async function deltaTable(
  client: pg.ClientBase,
  t: PgTableInfo,
  before: PgTable,
  changes: TableChanges,
  writer: ContentWriter,
  inFlight: number,
  interned: Interned,
): Promise<PgTable> {
  const changed = [...changes.keys.values()];
  const keyTypes = t.primaryKey.map((k) => t.columns.find((c) => c.name === k)!.type);
  const keys = `SELECT ${t.primaryKey.map((k, j) => `CAST(k.c${j} AS ${keyTypes[j]}) AS ${pg.escapeIdentifier(k)}`).join(', ')}
      FROM unnest(${t.primaryKey.map((_, j) => `${pg.escapeLiteral(textArray(changed.map((v) => v[j]!)))}::text[]`).join(', ')})
        AS k(${t.primaryKey.map((_, j) => `c${j}`).join(', ')})`;
  const keyList = t.primaryKey.map((k) => pg.escapeIdentifier(k)).join(', ');
  const keyRef = await writer.write(
    PLATFORM_SCOPE,
    client.query(copyOut(`COPY (SELECT * FROM (${keys}) k ORDER BY ${keyList}) TO STDOUT`)),
    { compress: true },
  );
  const rowKey = t.primaryKey.map((k) => `${ROW}.${pg.escapeIdentifier(k)}`).join(', ');
  // One key column: `= ANY(array)`, which the planner serves with one index or bitmap scan in key
  // order (an IN over the unnested keys became a nested loop of random lookups, ~4x slower here).
  const where =
    t.primaryKey.length === 1
      ? `${rowKey} = ANY(CAST(${pg.escapeLiteral(textArray(changed.map((v) => v[0]!)))} AS ${keyTypes[0]}[]))`
      : `(${rowKey}) IN (${keys})`;
  const rows = await copyTable(
    client,
    t,
    writer,
    inFlight,
    interned,
    rowsQuery(t, { tenantField: true, where }),
    { inline: true },
  );
  // the parent's rows, less those whose key changed, plus the changed rows there now
  const rowCount = before.rowCount - changes.existed + rows.rowCount;
  if (rowCount < 0)
    throw new CorruptionError(`${t.schema}.${t.name}: the change stream names rows the parent did not hold`);
  const delta: TableDelta = {
    keys: keyRef,
    keyCount: changed.length,
    segmentList: rows.segmentList!,
    rows: rows.rowCount,
    bytes: rows.bytes ?? 0,
  };
  const { digest: _replaced, ...base } = pick(before);
  return { ...t, ...base, rowCount, deltas: [...(before.deltas ?? []), delta] };
}
