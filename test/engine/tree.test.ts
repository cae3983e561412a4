import { expect, it } from 'vitest';
import { CorruptionError } from '../../src/errors.js';
import { snapshotTree } from '../../src/engine/tree.js';

const pg = { kind: 'postgres', database: 'd', tables: [], tenants: [], sequences: [] };

it('narrows a tree to its database and files parts, leaving other keys out', () => {
  const files = { main: [{ path: 'a', type: 'file', size: 1, mtimeMs: 0, mode: 0o644 }] };
  const tree = snapshotTree({ postgres: pg, files, other: 1 });
  expect(tree.postgres?.database).toBe('d');
  expect(tree.files?.main?.[0]?.path).toBe('a');
  expect(Object.keys(tree).sort()).toEqual(['files', 'postgres']);
  expect(snapshotTree(null)).toEqual({});
});

it('refuses a part that is not of its kind', () => {
  expect(() => snapshotTree({ postgres: { ...pg, kind: 'mysql' } })).toThrow(CorruptionError);
  expect(() => snapshotTree({ postgres: { ...pg, tables: {} } })).toThrow(CorruptionError);
  expect(() => snapshotTree({ files: { main: {} } })).toThrow(CorruptionError);
  expect(() => snapshotTree([pg])).toThrow(CorruptionError);
});
