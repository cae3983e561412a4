import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonPieces, jsonStream } from '../../../src/engine/repo/json-stream.js';

describe('streamed tree JSON', () => {
  it('is byte for byte what JSON.stringify writes, for any JSON value and nesting', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 9 }), fc.integer({ min: 1, max: 64 }), (value, size) => {
        const text = Buffer.concat([...jsonStream(value, size)]).toString('utf8');
        expect(text).toBe(JSON.stringify(value));
      }),
    );
  });

  it('drops undefined members and writes dates as JSON.stringify does', () => {
    const value = { a: undefined, b: [undefined, 1], c: new Date(0), d: { e: { f: { g: { h: [1] } } } } };
    expect(Buffer.concat([...jsonStream(value)]).toString()).toBe(JSON.stringify(value));
  });

  it('gives the whole text only while it stays under the limit', () => {
    const big = { tables: Array.from({ length: 1000 }, (_, i) => ({ i, name: `t${i}` })) };
    expect(jsonPieces(big, 100)).toBeUndefined();
    expect(jsonPieces(big, 1 << 20)?.toString()).toBe(JSON.stringify(big));
  });
});
