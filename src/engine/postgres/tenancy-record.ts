/**
 * The tenancy a database backup records in its tree: every table's class and path, the check that
 * refuses a bad override before a backup writes anything, and the tables whose class changed.
 */
import pg from 'pg';
import type { PgTableTenancy, PgTree } from '../tree.js';
import { readTenancyFacts, type PgTableInfo } from './catalog.js';
import {
  classifyTenancy,
  describeTenancy,
  tableLabel,
  type TableTenancy,
  type TenancyClass,
  type TenancySettings,
  type TenancyTable,
} from './tenancy.js';

export type TenancyRecord = NonNullable<PgTree['tenancy']>;

/** Every table's class and path, by label; a bad override throws a ConfigError naming it. */
export async function readTenancy(client: pg.ClientBase, s: TenancySettings): Promise<TenancyRecord> {
  return tenancyRecord(await readTenancyFacts(client), s);
}

/** The record of tables read by readTenancyFacts. */
export function tenancyRecord(facts: TenancyTable[], s: TenancySettings): TenancyRecord {
  const out: TenancyRecord = {};
  for (const t of classifyTenancy(facts, s)) {
    out[tableLabel(t)] = {
      class: t.class,
      ...(t.tenant ? { tenant: t.tenant } : {}),
      ...(t.path.length ? { path: t.path } : {}),
      ...(t.end ? { end: t.end } : {}),
      ...(t.override ? { override: true as const } : {}),
    };
  }
  return out;
}

/**
 * The tables as their tenancy says: platform, the tenant's own column, or the foreign keys an
 * FK-reached table's rows follow to it (a backup cuts those per tenant too, tenant-rows.ts).
 */
export function withTenancy(tables: PgTableInfo[], record: TenancyRecord): PgTableInfo[] {
  const partitioned = new Set(tables.filter((t) => t.partitioned).map(tableLabel));
  return tables.map((t) => {
    const r = record[tableLabel(t)];
    if (!r) return t;
    const { tenantColumn: _column, tenantVia: _via, ...rest } = t;
    if (r.class === 'platform' || !r.end || !r.tenant) return { ...rest, scopeKind: 'platform' };
    if (!r.path?.length) return { ...rest, scopeKind: r.tenant, tenantColumn: r.end.column };
    const path = r.path.map((h) => ({
      columns: h.columns,
      to: { ...h.to, ...(partitioned.has(tableLabel(h.to)) ? { partitioned: true } : {}) },
      toColumns: h.toColumns,
    }));
    return { ...rest, scopeKind: r.tenant, tenantVia: { path, column: r.end.column } };
  });
}

/**
 * Classifies the source once on a connection of its own, for its errors only: a backup calls it
 * before it writes anything, so a bad override leaves the repository as it was.
 */
export async function checkTenancy(url: string, s: TenancySettings): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await readTenancy(client, s);
  } finally {
    await client.end();
  }
}

export interface TenancyChange {
  /** `app.rsvp_answers`, as PostgreSQL users write it. */
  table: string;
  from: TenancyClass;
  to: TenancyClass;
  /** The class and path now, as `wedvault tenancy` prints them. */
  now: string;
}

const asTable = (label: string, r: PgTableTenancy): TableTenancy => ({
  schema: '',
  name: label,
  ...r,
  path: r.path ?? [],
});

/** Tables in both trees whose class differs, by label; none when the parent recorded no tenancy. */
export function tenancyChanges(
  before: TenancyRecord | undefined,
  after: TenancyRecord | undefined,
): TenancyChange[] {
  if (!before || !after) return [];
  const out: TenancyChange[] = [];
  for (const [table, now] of Object.entries(after).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const was = before[table];
    if (was && was.class !== now.class)
      out.push({ table, from: was.class, to: now.class, now: describeTenancy(asTable(table, now)) });
  }
  return out;
}

/** One line for a log or a terminal. */
export const describeChange = (c: TenancyChange): string =>
  `${c.table} changed tenancy class since the parent snapshot: ${c.from} → ${c.to} (now ${c.now})`;
