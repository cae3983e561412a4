import { randomBytes } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { seal, sha256Hex } from '../../../src/engine/repo/crypto.js';
import {
  decodeTable,
  groupEntries,
  TableBuilder,
  type EntryFields,
} from '../../../src/engine/repo/entries.js';

import { decodeIndex, encodeIndex, INDEX_PREFIX } from '../../../src/engine/repo/index.js';
import type { BlobEntry } from '../../../src/engine/repo/blob.js';
import { parsePackHeader, type PackedBlob } from '../../../src/engine/repo/pack.js';
import { Repository } from '../../../src/engine/repo/repository.js';
import { getBuffer } from '../../../src/storage/types.js';
import { newRepo, pseudoRandom, readBack, streamOf, type TestRepo } from './helpers.js';

/** A table of these groups, built as the writer builds one. */
function encodeTable(groups: { pack?: string; blobs: EntryFields[] }[]): Buffer {
  const table = new TableBuilder();
  for (const g of groups) {
    table.group(g.pack);
    for (const b of g.blobs) table.add(b.id, b);
  }
  return table.finish().bytes;
}

/** A blob entry as format 1 (JSON, no longer written) lists it. */
const toPacked = (e: BlobEntry): PackedBlob => [
  e.id,
  e.offset,
  e.length,
  e.rawLength,
  e.flags,
  e.scopeHash,
  e.keyId,
];

let t: TestRepo | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});

const entry = (i: number, scope: string) => ({
  id: randomBytes(32).toString('hex'),
  offset: i * 1000,
  length: 1000 + i,
  rawLength: 4000 + i,
  flags: i % 2,
  scopeHash: scope,
  keyId: `k${scope.slice(0, 4)}`,
});

it('an index made of pack headers lists every entry, key sets renumbered across packs', () => {
  const metaKey = randomBytes(32);
  const scopes = [0, 1, 2].map(() => randomBytes(16).toString('hex'));
  // pack 1 numbers scopes 0,1; pack 2 numbers 2,0: the index must map both onto one list
  const packs = [
    { pack: randomBytes(32).toString('hex'), blobs: [0, 1, 2].map((i) => entry(i, scopes[i % 2]!)) },
    { pack: randomBytes(32).toString('hex'), blobs: [3, 4, 5].map((i) => entry(i, scopes[(i + 2) % 3]!)) },
  ];
  const headers = packs.map((p) => {
    const t = decodeTable(encodeTable([{ blobs: p.blobs }]), false);
    return { ...t, groups: [{ ...t.groups[0]!, pack: p.pack }] };
  });
  const { key, bytes, table } = encodeIndex(metaKey, headers);
  expect(table.keySets).toHaveLength(3);
  // the table the builder hands over is the one a reader decodes from its bytes
  expect(table).toEqual(decodeTable(table.bytes, true));
  expect(decodeIndex(metaKey, key, bytes)).toEqual(
    packs.map((p) => ({ id: p.pack, blobs: p.blobs.map((b) => ({ ...b, pack: p.pack })) })),
  );
});

it('binary entry tables give back every field, key sets stored once', () => {
  const scopes = [randomBytes(16).toString('hex'), randomBytes(16).toString('hex')];
  const packs = [randomBytes(32).toString('hex'), randomBytes(32).toString('hex')];
  const groups = packs.map((pack, g) => ({
    pack,
    blobs: [0, 1, 2].map((i) => entry(g * 3 + i, scopes[i % 2]!)),
  }));
  const bytes = encodeTable(groups);
  // 2 key sets and 6 entries of 49 bytes, not a scope hash per entry
  expect(bytes.length).toBeLessThan(6 * 49 + 2 * 60 + 100);
  const table = decodeTable(bytes, true);
  expect(table.keySets).toHaveLength(2);
  for (const [g, group] of groups.entries()) {
    expect(groupEntries(table, g, group.pack)).toEqual(group.blobs.map((b) => ({ ...b, pack: group.pack })));
  }
  // cut anywhere, or with a byte too many, it is malformed, never misread
  for (let cut = 1; cut < bytes.length; cut += 7)
    expect(() => decodeTable(bytes.subarray(0, cut), true)).toThrow();
  expect(() => decodeTable(Buffer.concat([bytes, Buffer.alloc(1)]), true)).toThrow(/trailing/);
  expect(() => encodeTable([{ blobs: [{ ...entry(0, scopes[0]!), id: 'XY' }] }])).toThrow(/hex/);
});

it('reads format-1 (JSON) index objects and pack headers beside binary ones', async () => {
  t = await newRepo();
  const data = pseudoRandom(300_000, 7);
  const w = t.repo.writer();
  const ref = await w.write('platform', streamOf(data));
  await w.flush();
  await w.close();
  const meta = (t.repo as unknown as { ctx: { meta: { meta: Buffer } } }).ctx.meta.meta;

  // every index object rewritten as format 1, under its new name
  for await (const o of t.storage.list(INDEX_PREFIX)) {
    const packs = decodeIndex(meta, o.key, await getBuffer(t.storage, o.key));
    const json = { version: 1, packs: packs.map((p) => ({ id: p.id, blobs: p.blobs.map(toPacked) })) };
    const sealed = seal(meta, Buffer.from(JSON.stringify(json)), 'wedvault-index-v1');
    await t.storage.delete(o.key);
    await t.storage.put(`${INDEX_PREFIX}${sha256Hex(sealed)}`, sealed);
  }
  const reopened = await Repository.open(t.storage, t.masterKey);
  expect((await readBack(reopened, ref)).equals(data)).toBe(true);
  expect(await reopened.check({ mode: 'full' })).toEqual([]);

  // a format-1 pack header parses to the same entries
  const blobs = [entry(0, randomBytes(16).toString('hex'))];
  const header = seal(
    meta,
    Buffer.from(JSON.stringify({ version: 1, blobs: blobs.map((b) => toPacked({ ...b, pack: '' })) })),
    'wedvault-pack-header-v1',
  );
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(header.length, 0);
  Buffer.from('WVP1').copy(trailer, 4);
  const body = Buffer.alloc(5000);
  const pack = Buffer.concat([body, header, trailer]);
  expect(parsePackHeader(meta, 'data/ab/abcd', pack, pack.length)).toEqual([{ ...blobs[0], pack: 'abcd' }]);
});
