import { describe, expect, it } from 'vitest';
import { PLATFORM_SCOPE } from '../../src/engine/api.js';
import type { PgTableInfo } from '../../src/engine/postgres/catalog.js';
import type { TableChanges } from '../../src/engine/postgres/changes.js';
import { MAX_DELTAS, planTable, probed, type TableFacts } from '../../src/engine/postgres/plan.js';
import type { PgTable, TableDelta } from '../../src/engine/tree.js';

const info: PgTableInfo = {
  schema: 'public',
  name: 'guests',
  columns: [
    { name: 'id', type: 'integer' },
    { name: 'wedding_id', type: 'integer' },
  ],
  primaryKey: ['id'],
  tenantColumn: 'wedding_id',
  scopeKind: 'wedding',
};
const MARKS = '16384|16390:731:1200';
const parent: PgTable = { ...info, rowCount: 1000, marks: MARKS, digest: 'd' };
const changes = (n: number, whole = false): TableChanges => ({
  keys: new Map(Array.from({ length: n }, (_, i) => [String(i), [String(i)]])),
  existed: n,
  whole,
});
const ref = { scope: PLATFORM_SCOPE, blobs: [], size: 0 };
const delta: TableDelta = { keys: ref, keyCount: 10, segmentList: ref, rows: 10, bytes: 1 };
const facts = (over: Partial<TableFacts> = {}): TableFacts => ({
  table: info,
  marks: MARKS,
  parent,
  parentSnapshot: '700:800:',
  slot: { changed: changes(5), logged: true },
  ...over,
});

describe('planTable', () => {
  it('copies a table no parent holds', () => {
    expect(planTable(facts({ parent: undefined }))).toEqual({
      action: 'copy',
      reason: 'no parent backup holds it',
    });
  });

  it('reuses a table the change slot names no row of, and makes a delta of a few changed keys', () => {
    expect(planTable(facts({ slot: { changed: undefined, logged: true } }))).toMatchObject({
      action: 'reuse',
      parent,
    });
    const plan = planTable(facts());
    expect(plan).toMatchObject({ action: 'delta', reason: 'the change slot names 5 keys' });
  });

  it('reads the table again once its deltas are too many or name too many rows', () => {
    const full = { ...parent, deltas: Array.from({ length: MAX_DELTAS }, () => delta) };
    // marks differ after the changes: the probe cannot save it either
    expect(planTable(facts({ parent: full, marks: '16384|16390:731:1300' }))).toEqual({
      action: 'copy',
      reason: `it carries ${MAX_DELTAS} deltas already`,
    });
    expect(planTable(facts({ slot: { changed: changes(251), logged: true } }))).toMatchObject({
      action: 'probe',
    });
    expect(
      planTable(facts({ slot: { changed: changes(251), logged: true }, marks: '16384|16390:731:1300' })),
    ).toEqual({
      action: 'copy',
      reason: 'its deltas would name 251 keys of 1000 rows',
    });
    expect(
      planTable(facts({ slot: { changed: changes(3, true), logged: true }, marks: '16384|16390:731:1300' }))
        .reason,
    ).toBe('the change slot cannot name its changed rows');
  });

  it('does not trust the slot for unlogged or keyless tables, or rewritten ones', () => {
    for (const f of [
      facts({ slot: { changed: undefined, logged: false } }),
      facts({ slot: { changed: undefined, logged: true }, table: { ...info, primaryKey: [] } }),
      facts({ slot: { changed: undefined, logged: true }, marks: '99999|16391:731:1200' }),
    ]) {
      expect(planTable(f).action).not.toBe('reuse');
    }
  });

  it('without a slot, equal marks ask the probe, and the probe decides', () => {
    const plan = planTable(facts({ slot: undefined }));
    if (plan.action !== 'probe') throw new Error(`expected a probe, got ${plan.action}`);
    expect(plan.parentSnapshot).toBe('700:800:');
    expect(probed(plan, true)).toMatchObject({ action: 'reuse', parent });
    expect(probed(plan, false)).toMatchObject({ action: 'copy' });
  });

  it('copies without a probe when the marks, the shape or the parent snapshot differ', () => {
    expect(planTable(facts({ slot: undefined, marks: 'other' })).reason).toBe(
      "its change marks differ from the parent's",
    );
    expect(planTable(facts({ slot: undefined, marks: undefined })).action).toBe('copy');
    expect(planTable(facts({ slot: undefined, parentSnapshot: undefined })).reason).toBe(
      'the parent recorded no snapshot',
    );
    const wider = { ...info, columns: [...info.columns, { name: 'note', type: 'text' }] };
    expect(planTable(facts({ slot: undefined, table: wider })).reason).toBe(
      'its columns, key or tenant column changed',
    );
  });
});
