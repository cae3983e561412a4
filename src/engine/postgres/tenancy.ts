/**
 * Which wedding (or supplier) owns each table's rows, decided from the catalog's foreign keys:
 * a pure function of the tables, their keys and the settings (rules in docs/ARCHITECTURE.md, "Tenancy").
 */
import type { PostgresSourceConfig, TableName, TenancyOverride } from '../../config/index.js';
import { quoteName } from '../../config/identifier.js';
import { ConfigError } from '../../errors.js';

export interface TenancyForeignKey {
  /** The constraint's name (unique per table). */
  name: string;
  columns: string[];
  references: { schema: string; name: string };
  referencedColumns: string[];
}

export interface TenancyTable {
  schema: string;
  name: string;
  columns: { name: string; notNull: boolean }[];
  primaryKey: string[];
  /** The table this one is a partition of. */
  partitionOf?: { schema: string; name: string } | undefined;
  foreignKeys: TenancyForeignKey[];
}

export interface TenancySettings {
  tenantColumn: string;
  supplierColumn?: string | undefined;
  /** The weddings table (the ceremony date's): its one-column primary key is the tenant id. */
  tenantTable?: TableName | undefined;
  overrides?: TenancyOverride[] | undefined;
}

/** The settings as the config gives them: the ceremony date's table is the weddings table. */
export const tenancySettings = (
  c: Pick<PostgresSourceConfig, 'tenantKey' | 'ceremonyDate'> & {
    supplierKey?: string | undefined;
    tenancy?: TenancyOverride[] | undefined;
  },
): TenancySettings => ({
  tenantColumn: c.tenantKey,
  supplierColumn: c.supplierKey,
  tenantTable: {
    ...(c.ceremonyDate.schema ? { schema: c.ceremonyDate.schema } : {}),
    table: c.ceremonyDate.table,
  },
  overrides: c.tenancy,
});

export type Tenant = 'wedding' | 'supplier';
export type TenancyClass = Tenant | 'platform' | 'mixed';

export interface TenancyHop {
  constraint: string;
  columns: string[];
  to: { schema: string; name: string };
  toColumns: string[];
}

export interface TableTenancy {
  schema: string;
  name: string;
  class: TenancyClass;
  /** Whose rows (for `mixed`, the rows whose key is set). */
  tenant?: Tenant;
  /** Foreign keys followed from this table, in order; empty when the table holds the tenant column. */
  path: TenancyHop[];
  /** The table and column the path ends at. */
  end?: { schema: string; name: string; column: string };
  /** Decided by `sources.postgres.tenancy`. */
  override?: boolean;
}

const keyOf = (t: { schema: string; name: string }) => `${t.schema}.${t.name}`;
const RANK: Record<string, number> = { wedding: 0, supplier: 1, 'mixed:wedding': 2, 'mixed:supplier': 3 };
const rank = (r: TableTenancy) => RANK[r.class === 'mixed' ? `mixed:${r.tenant}` : r.class] ?? 9;
const names = (r: TableTenancy) => r.path.map((h) => h.constraint).join('\u0000');

/** Strict before mixed, wedding before supplier, fewer hops, then constraint names (so the choice is stable). */
function better(a: TableTenancy, b: TableTenancy | undefined): boolean {
  if (!b) return true;
  if (rank(a) !== rank(b)) return rank(a) < rank(b);
  if (a.path.length !== b.path.length) return a.path.length < b.path.length;
  return names(a) < names(b);
}

export function classifyTenancy(tables: TenancyTable[], s: TenancySettings): TableTenancy[] {
  const byKey = new Map(tables.map((t) => [keyOf(t), t]));
  // every partition takes its root's class: the rows are one table's rows
  const root = (t: TenancyTable): TenancyTable => {
    const seen = new Set<string>();
    let r = t;
    while (r.partitionOf && byKey.has(keyOf(r.partitionOf)) && !seen.has(keyOf(r))) {
      seen.add(keyOf(r));
      r = byKey.get(keyOf(r.partitionOf))!;
    }
    return r;
  };
  const roots = tables.filter((t) => root(t) === t);
  const overrides = resolveOverrides(roots, s.overrides ?? []);
  const state = new Map<string, TableTenancy>();

  for (const t of roots) {
    const rule = overrides.get(keyOf(t))?.rule;
    if (rule === 'platform') state.set(keyOf(t), { ...base(t), class: 'platform', path: [], override: true });
    else if (!rule) {
      const direct = directTenancy(t, s);
      if (direct) state.set(keyOf(t), direct);
    }
  }
  // Relax along foreign keys until nothing improves: a best path only ever gets better, and a
  // candidate through the table itself is refused, so cycles end (and alone reach no tenant).
  for (let changed = true, rounds = 0; changed && rounds <= roots.length + 1; rounds++) {
    changed = false;
    for (const t of roots) {
      const o = overrides.get(keyOf(t));
      if (o?.rule === 'platform' || (!o && state.get(keyOf(t))?.path.length === 0)) continue;
      const fks = o ? [o.fk!] : t.foreignKeys;
      for (const fk of [...fks].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
        const target = byKey.get(keyOf(fk.references));
        const via = target && state.get(keyOf(root(target)));
        if (!via || via.class === 'platform' || via.path.some((h) => keyOf(h.to) === keyOf(t))) continue;
        if (root(target) === t) continue;
        const notNull = fk.columns.every((c) => t.columns.find((x) => x.name === c)?.notNull);
        const hop = {
          constraint: fk.name,
          columns: fk.columns,
          to: fk.references,
          toColumns: fk.referencedColumns,
        };
        const cand: TableTenancy = {
          ...base(t),
          class: notNull && via.class !== 'mixed' ? via.class : 'mixed',
          tenant: via.tenant!,
          path: [hop, ...via.path],
          end: via.end!,
          ...(o ? { override: true } : {}),
        };
        if (better(cand, state.get(keyOf(t)))) {
          state.set(keyOf(t), cand);
          changed = true;
        }
      }
    }
  }
  for (const [key, o] of overrides) {
    if (o.rule !== 'platform' && !state.has(key)) {
      throw new ConfigError(
        `sources.postgres.tenancy "${o.key}": ${o.rule.via} does not reach a table of a wedding or supplier`,
      );
    }
  }
  return tables.map((t) => {
    const r = root(t);
    const found = state.get(keyOf(r)) ?? { ...base(r), class: 'platform' as const, path: [] };
    return { ...found, schema: t.schema, name: t.name };
  });
}

const base = (t: TenancyTable) => ({ schema: t.schema, name: t.name });

function directTenancy(t: TenancyTable, s: TenancySettings): TableTenancy | undefined {
  const has = (c: string) => t.columns.some((x) => x.name === c);
  const end = (column: string) => ({ schema: t.schema, name: t.name, column });
  const isTenantTable =
    s.tenantTable &&
    t.name === s.tenantTable.table &&
    (s.tenantTable.schema === undefined || t.schema === s.tenantTable.schema) &&
    t.primaryKey.length === 1;
  const wedding = isTenantTable ? t.primaryKey[0]! : has(s.tenantColumn) ? s.tenantColumn : undefined;
  if (wedding) return { ...base(t), class: 'wedding', tenant: 'wedding', path: [], end: end(wedding) };
  if (s.supplierColumn && has(s.supplierColumn)) {
    return { ...base(t), class: 'supplier', tenant: 'supplier', path: [], end: end(s.supplierColumn) };
  }
  return undefined;
}

/** Each override's table and key, or a ConfigError naming what it names that does not exist. */
function resolveOverrides(
  roots: TenancyTable[],
  overrides: TenancyOverride[],
): Map<string, TenancyOverride & { fk?: TenancyForeignKey }> {
  const out = new Map<string, TenancyOverride & { fk?: TenancyForeignKey }>();
  for (const o of overrides) {
    const matches = roots.filter(
      (t) => t.name === o.table.table && (o.table.schema === undefined || t.schema === o.table.schema),
    );
    const where = `sources.postgres.tenancy "${o.key}"`;
    if (matches.length === 0) throw new ConfigError(`${where}: no such table in the source database`);
    if (matches.length > 1) {
      throw new ConfigError(
        `${where}: in several schemas (${matches.map(keyOf).join(', ')}); name the schema`,
      );
    }
    const t = matches[0]!;
    if (o.rule === 'platform') {
      out.set(keyOf(t), o);
      continue;
    }
    const via = o.rule.via;
    const fk = t.foreignKeys.find((k) => k.name === via);
    if (!fk) throw new ConfigError(`${where}: no foreign key "${via}" on ${tableLabel(t)}`);
    out.set(keyOf(t), { ...o, fk });
  }
  return out;
}

/** "wedding via rsvp_answers_guest_id_fkey → app.guests.wedding_id", "wedding (wedding_id)", "platform". */
export function describeTenancy(r: TableTenancy): string {
  const cls = r.class === 'mixed' ? `mixed (${r.tenant} where set)` : r.class;
  const by = r.override ? ', by override' : '';
  if (!r.end) return `${cls}${by}`;
  if (r.path.length === 0) return `${cls} (${r.end.column})${by}`;
  const hops = r.path.map((h) => h.constraint).join(' → ');
  return `${cls} via ${hops} → ${tableLabel(r.end)}.${quoteName(r.end.column)}${by}`;
}

/** `app."Weddings"`: the way PostgreSQL users write it. */
export const tableLabel = (t: { schema: string; name: string }): string =>
  `${quoteName(t.schema)}.${quoteName(t.name)}`;
