/** Splits a COPY text stream into runs of rows of one tenant, without parsing more than the tenant field. */

const NL = 0x0a;
const TAB = 0x09;

export interface Run {
  /** The tenant field as COPY wrote it; null for SQL NULL (`\N`). */
  tenant: string | null;
  bytes: Buffer;
  rows: number;
}

/**
 * Stateful splitter: push COPY bytes, get back complete runs. A run ends where the tenant changes or
 * the input chunk ends; consecutive runs of one tenant are merged by the caller.
 */
export class TenantSplitter {
  private carry: Buffer | undefined;

  constructor(private readonly column: number | undefined) {}

  push(chunk: Buffer): Run[] {
    const buf = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    this.carry = undefined;
    const runs: Run[] = [];
    let runStart = 0;
    let runTenant: string | null | undefined;
    let rows = 0;
    let pos = 0;
    for (;;) {
      const end = buf.indexOf(NL, pos);
      if (end < 0) break;
      const tenant = this.tenantOf(buf, pos, end);
      if (rows > 0 && tenant !== runTenant) {
        runs.push({ tenant: runTenant!, bytes: buf.subarray(runStart, pos), rows });
        runStart = pos;
        rows = 0;
      }
      runTenant = tenant;
      rows++;
      pos = end + 1;
    }
    if (rows > 0) runs.push({ tenant: runTenant!, bytes: buf.subarray(runStart, pos), rows });
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
      const tab = buf.indexOf(TAB, from);
      if (tab < 0 || tab >= end) return null;
      from = tab + 1;
    }
    let to = buf.indexOf(TAB, from);
    if (to < 0 || to > end) to = end;
    const field = buf.toString('utf8', from, to);
    if (field === '\\N') return null;
    return field.includes('\\') ? unescapeCopyText(field) : field;
  }
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
