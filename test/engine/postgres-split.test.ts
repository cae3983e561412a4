import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TenantSplitter, unescapeCopyText } from '../../src/engine/postgres/split.js';

/** COPY text escaping of one value, as PostgreSQL writes it. */
const escape = (v: string | null) =>
  v === null
    ? '\\N'
    : v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t');

const value = fc.oneof(
  fc.constantFrom('w-1', 'w-2', 'a\tb', 'x\\y', 'line\nbreak', 'Zoë ✓', ''),
  fc.string(),
);

describe('TenantSplitter', () => {
  it('cuts any chunking of any rows into runs of one tenant that add up to the input', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.option(value), fc.string(), fc.string()), { maxLength: 40 }),
        fc.integer({ min: 0, max: 2 }),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 10 }),
        (rows, column, cuts) => {
          const text = rows.map((r) => `${r.map(escape).join('\t')}\n`).join('');
          const bytes = Buffer.from(text);
          const splitter = new TenantSplitter(column);
          const runs = [];
          for (let pos = 0, i = 0; pos < bytes.length; i++) {
            const n = cuts[i % cuts.length]!;
            runs.push(...splitter.push(bytes.subarray(pos, pos + n)));
            pos += n;
          }
          expect(splitter.leftover).toBe(0);
          expect(Buffer.concat(runs.map((r) => r.bytes)).equals(bytes)).toBe(true);
          // every run's rows carry its tenant, and the row counts add up
          const got = runs.flatMap((r) => Array.from({ length: r.rows }, () => r.tenant));
          expect(got).toEqual(rows.map((r) => r[column] ?? null));
          for (const r of runs) expect(r.bytes.toString().split('\n').length - 1).toBe(r.rows);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reports a stream that ends inside a row', () => {
    const s = new TenantSplitter(0);
    s.push(Buffer.from('w-1\tx\nw-2\ty'));
    expect(s.leftover).toBe(5);
  });

  it('undoes COPY escapes', () => {
    expect(unescapeCopyText('a\\tb\\\\c\\nd\\re')).toBe('a\tb\\c\nd\re');
  });
});
