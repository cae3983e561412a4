/**
 * What a backup does with each table, decided from facts alone (no I/O, so it reads and tests on
 * its own): take the parent's rows as they are, append a delta of the rows the change slot names,
 * or copy the table whole. One question may need the database: whether any row is newer than the
 * parent's snapshot; the plan then says `probe`, and probed() finishes it with the answer.
 */
import type { PgTableInfo } from './catalog.js';
import type { TableChanges } from './changes.js';
import type { PgTable } from '../tree.js';

/** Deltas a table carries before it is read whole again, and the share of its rows they may name. */
export const MAX_DELTAS = 16;
export const MAX_DELTA_SHARE = 0.25;

export interface TableFacts {
  table: PgTableInfo;
  /** The table's change marks in this backup's snapshot (see PgTable.marks). */
  marks: string | undefined;
  /** The same table in the parent backup; undefined for a full backup or a new table. */
  parent: PgTable | undefined;
  /** pg_current_snapshot() of the parent backup. */
  parentSnapshot: string | undefined;
  /**
   * What the change slot saw since the parent (undefined when no slot reports for this backup):
   * the table's changes (undefined: no row of it), and whether the slot sees every row change of
   * it (a plain logged table whose replica identity gives the old key).
   */
  slot?: { changed: TableChanges | undefined; logged: boolean } | undefined;
  /**
   * For a table reaching its tenant through foreign keys: rows a change on that path may have
   * moved to another tenant (keys the slot's own changes are merged with), or why it cannot tell.
   */
  moved?: TableChanges | string | undefined;
}

/** Same marks as the parent: the table is the parent's if no visible row is newer than its snapshot. */
export interface ProbePlan {
  action: 'probe';
  reason: string;
  parent: PgTable;
  parentSnapshot: string;
}

export type TablePlan =
  | { action: 'reuse'; reason: string; parent: PgTable }
  | { action: 'delta'; reason: string; parent: PgTable; changes: TableChanges }
  | { action: 'copy'; reason: string }
  | ProbePlan;

/** A plan with nothing left to ask the database. */
export type SettledPlan = Exclude<TablePlan, ProbePlan>;

/**
 * Same columns, key, tenant column, scope and data class: the parent's segments have this table's
 * layout and keys (a table moved into a class must be sealed again under the class's scopes).
 */
const sameShape = (a: PgTableInfo, b: PgTableInfo): boolean =>
  JSON.stringify(shape(a)) === JSON.stringify(shape(b));
const shape = (t: PgTableInfo) => [
  t.columns,
  t.primaryKey,
  t.tenantColumn ?? null,
  t.tenantVia ?? null,
  t.scopeKind,
  t.dataClass ?? null,
];

/** Same relation and same files (no rewrite: VACUUM FULL, CLUSTER, SET UNLOGGED, a column type change). */
function sameStorage(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false;
  const files = (m: string) => {
    const [oid, rest = ''] = m.split('|');
    return `${oid}|${rest
      .split(',')
      .map((x) => x.split(':')[0])
      .join(',')}`;
  };
  return files(a) === files(b);
}

/**
 * What the change slot allows: reuse when it names no row, a delta when the changes are few, or
 * why neither (a string); undefined when the slot cannot speak for the table at all.
 */
function fromSlot(f: TableFacts, parent: PgTable): TablePlan | string | undefined {
  const t = f.table;
  // partitioned, unlogged, rewritten or keyless tables are beyond what the slot can tell
  if (!f.slot?.logged || t.primaryKey.length === 0) return undefined;
  if (!sameShape(parent, t) || !sameStorage(parent.marks, f.marks)) return undefined;
  const changed = f.slot.changed;
  if (!changed) return { action: 'reuse', reason: 'the change slot names no row of it', parent };
  if (changed.whole) return 'the change slot cannot name its changed rows';
  const deltas = parent.deltas?.length ?? 0;
  if (deltas >= MAX_DELTAS) return `it carries ${deltas} deltas already`;
  const named = (parent.deltas ?? []).reduce((n, d) => n + d.keyCount, changed.keys.size);
  if (named > Math.max(1, parent.rowCount) * MAX_DELTA_SHARE)
    return `its deltas would name ${named} keys of ${parent.rowCount} rows`;
  return {
    action: 'delta',
    reason: `the change slot names ${changed.keys.size} keys`,
    parent,
    changes: changed,
  };
}

/** The plan of one table; a copy's reason is the first thing that ruled out reusing the parent's rows. */
export function planTable(f: TableFacts): TablePlan {
  if (!f.parent) return { action: 'copy', reason: 'no parent backup holds it' };
  if (typeof f.moved === 'string') return { action: 'copy', reason: f.moved };
  if (!f.moved?.keys.size) return planOwn(f, f.parent);
  const moved = f.moved;
  const own = f.slot?.changed;
  const plan = planOwn({ ...f, slot: f.slot && { ...f.slot, changed: merged(own, moved) } }, f.parent);
  if (plan.action === 'delta' || plan.action === 'copy') return plan;
  return {
    action: 'copy',
    reason: `a change on its tenant path may have moved ${moved.keys.size} of its rows`,
  };
}

/** A table's own changes and the keys of rows moved by a change on its tenant path. */
function merged(own: TableChanges | undefined, moved: TableChanges): TableChanges {
  if (own?.whole) return own;
  const keys = new Map(own?.keys);
  let existed = own?.existed ?? 0;
  for (const [id, key] of moved.keys) {
    if (keys.has(id)) continue;
    // a row the stream names no change of was there in the parent's snapshot
    keys.set(id, key);
    existed++;
  }
  return { keys, existed, whole: false, ...(own?.updated ? { updated: true } : {}) };
}

function planOwn(f: TableFacts, parent: PgTable): TablePlan {
  const slot = fromSlot(f, parent);
  if (typeof slot === 'object') return slot;
  const copy = (why: string): TablePlan => ({ action: 'copy', reason: slot ?? why });
  if (!f.parentSnapshot) return copy('the parent recorded no snapshot');
  if (!sameShape(parent, f.table)) return copy('its columns, key or tenant column changed');
  if (f.marks === undefined || parent.marks !== f.marks)
    return copy("its change marks differ from the parent's");
  return {
    action: 'probe',
    reason: "same change marks: whether a row is newer than the parent's snapshot decides",
    parent,
    parentSnapshot: f.parentSnapshot,
  };
}

/** A probe's plan once the database answered (rowsUnchanged: same count, no row newer than the parent's snapshot). */
export function probed(p: ProbePlan, rowsUnchanged: boolean): SettledPlan {
  return rowsUnchanged
    ? { action: 'reuse', reason: "no row is newer than the parent's snapshot", parent: p.parent }
    : { action: 'copy', reason: "rows changed since the parent's snapshot" };
}
