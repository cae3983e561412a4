import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { scanBlobIds } from '../../../src/engine/repo/records.js';
import { contentRefs } from '../../../src/engine/repo/snapshot.js';

const id = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
// tenants and scopes with quotes, backslashes, brackets and the key itself inside them
const text = fc.oneof(
  fc.string({ unit: 'binary' }),
  fc.constantFrom('"blobs":["', '{"blobs":[', ',"blobs":[]', '\\', '"', 'ü💍'),
);
const segment = fc.record({
  tenant: fc.option(text),
  scope: text,
  rows: fc.nat(),
  ref: fc.record({ scope: text, blobs: fc.array(id, { maxLength: 3 }), size: fc.nat() }),
});

it('finds the blob ids a run of records names, as parsing them does, in UTF-8 and as latin1', () => {
  fc.assert(
    fc.property(fc.array(segment, { maxLength: 20 }), (segments) => {
      const run = segments.map((s) => `${JSON.stringify(s)}\n`).join('');
      const parsed = run
        .split('\n')
        .filter(Boolean)
        .flatMap((line) => [...contentRefs(JSON.parse(line))].flatMap((r) => r.blobs));
      expect(scanBlobIds(run)).toEqual(parsed);
      expect(scanBlobIds(Buffer.from(run).toString('latin1'))).toEqual(parsed);
    }),
  );
});

it('leaves runs it cannot read exactly to the parser', () => {
  const ref = { scope: 'platform', blobs: [randomBytes(32).toString('hex')], size: 1 };
  // a record that names a record list, and an id of another length
  expect(scanBlobIds(`${JSON.stringify({ list: { ...ref, records: true } })}\n`)).toBeUndefined();
  expect(scanBlobIds(`${JSON.stringify({ ref: { ...ref, blobs: ['abc'] } })}\n`)).toBeUndefined();
  expect(scanBlobIds(`${JSON.stringify({ ref })}\n`)).toEqual(ref.blobs);
});
