/** Splits a COPY text stream into runs of rows of one tenant, without parsing more than the tenant field. */

const NL = 0x0a;
const TAB = 0x09;
const BACKSLASH = 0x5c;

export interface Run {
  /** The tenant value (COPY escapes undone); null for SQL NULL (`\N`) or a table without tenants. */
  tenant: string | null;
  bytes: Buffer;
  rows: number;
}

/**
 * Stateful splitter: push COPY bytes, get back complete runs. A run ends where the tenant changes or
 * the input chunk ends; the caller merges consecutive runs of one tenant. COPY text escapes
 * newlines and tabs inside values, so a raw '\n' always ends a row and a raw '\t' ends a field.
 *
 * Per row it costs a native `indexOf` for the newline, a scan of the fields up to the tenant's and
 * a byte comparison with the previous row's tenant field: a string is only decoded when the tenant
 * changes.
 */
export class TenantSplitter {
  private carry: Buffer | undefined;
  /** The raw bytes of the last row's tenant field, to compare the next row against. */
  private lastRaw: Buffer | undefined;
  private lastTenant: string | null = null;

  constructor(private readonly column: number | undefined) {}

  push(chunk: Buffer): Run[] {
    const runs: Run[] = [];
    let buf = chunk;
    if (this.carry) {
      // finish the row cut by the previous chunk with a small copy, not a copy of the whole chunk
      const nl = chunk.indexOf(NL);
      if (nl < 0) {
        this.carry = Buffer.concat([this.carry, chunk]);
        return runs;
      }
      const row = Buffer.concat([this.carry, chunk.subarray(0, nl + 1)]);
      this.carry = undefined;
      runs.push({ tenant: this.tenantOf(row, 0, row.length - 1), bytes: row, rows: 1 });
      buf = chunk.subarray(nl + 1);
    }
    let runStart = 0;
    let runTenant: string | null = null;
    let rows = 0;
    let pos = 0;
    for (;;) {
      const end = buf.indexOf(NL, pos);
      if (end < 0) break;
      const tenant = this.tenantOf(buf, pos, end);
      if (rows > 0 && tenant !== runTenant) {
        runs.push({ tenant: runTenant, bytes: buf.subarray(runStart, pos), rows });
        runStart = pos;
        rows = 0;
      }
      runTenant = tenant;
      rows++;
      pos = end + 1;
    }
    if (rows > 0) runs.push({ tenant: runTenant, bytes: buf.subarray(runStart, pos), rows });
    // copy the partial row: keeping a view would pin the whole socket chunk
    if (pos < buf.length) this.carry = Buffer.from(buf.subarray(pos));
    return runs;
  }

  /** Bytes left without a final newline: a truncated COPY stream. */
  get leftover(): number {
    return this.carry?.length ?? 0;
  }

  private tenantOf(buf: Buffer, start: number, end: number): string | null {
    if (this.column === undefined) return null;
    let from = start;
    for (let i = 0; i < this.column; i++) {
      const tab = tabIn(buf, from, end);
      if (tab === end) return null;
      from = tab + 1;
    }
    const to = tabIn(buf, from, end);
    const len = to - from;
    // same bytes as the previous row: same tenant (the common case, no allocation)
    if (this.lastRaw && len === this.lastRaw.length && sameBytes(buf, from, this.lastRaw))
      return this.lastTenant;
    const raw = Buffer.from(buf.subarray(from, to));
    this.lastRaw = raw;
    this.lastTenant =
      len === 2 && raw[0] === BACKSLASH && raw[1] === 0x4e /* N */
        ? null
        : raw.includes(BACKSLASH)
          ? unescapeCopyText(raw.toString('utf8'))
          : raw.toString('utf8');
    return this.lastTenant;
  }
}

/**
 * COPY rows without their first field: the tenant a backup's query put first for a table that
 * reaches it through foreign keys (tenant-rows.ts), cut on, then dropped so the stored rows are
 * the table's own. Every such row has a field after it (a foreign key needs a column).
 */
export function dropFirstField(rows: Buffer): Buffer {
  const out = Buffer.allocUnsafe(rows.length);
  let o = 0;
  for (let p = 0; p < rows.length;) {
    const tab = rows.indexOf(TAB, p);
    const nl = tab < 0 ? -1 : rows.indexOf(NL, tab);
    if (nl < 0) throw new Error('a COPY row without a field after its tenant');
    o += rows.copy(out, o, tab + 1, nl + 1);
    p = nl + 1;
  }
  return out.subarray(0, o);
}

/** The first tab in buf[from, end), or end: a loop, since the fields before a tenant key are short. */
function tabIn(buf: Buffer, from: number, end: number): number {
  let i = from;
  while (i < end && buf[i] !== TAB) i++;
  return i;
}

/**
 * `raw` equals the bytes of `buf` at `from`: a loop, since a tenant field is a few bytes and
 * Buffer.compare's native call costs more than the comparison (once per row of every table).
 */
function sameBytes(buf: Buffer, from: number, raw: Buffer): boolean {
  for (let i = raw.length - 1; i >= 0; i--) if (buf[from + i] !== raw[i]) return false;
  return true;
}

const SIMPLE: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

/** COPY text format escapes (backslash sequences) back to the value. */
export function unescapeCopyText(field: string): string {
  return field.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return SIMPLE[e] ?? e;
  });
}
