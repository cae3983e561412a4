/**
 * Retention classes in a backup: which tables and files the config puts in which class, so their
 * tenants' data is sealed under `wedding:<id>/<class>` (a key per tenant × class) instead of the
 * tenant's own scope. Data in no class keeps the tenant's scope, as before classes existed.
 */
import picomatch from 'picomatch';
import type { TableName } from '../config/index.js';
import type { Storage } from '../storage/types.js';
import { classScope, PLATFORM_SCOPE, tenantOfScope, type KeyScope } from './api.js';
import { Repository } from './repo/repository.js';
import { snapshotTree, type PgTree } from './tree.js';

/** What a backup needs of a class: its name, tables and file patterns. */
export interface ClassMembers {
  name: string;
  tables: readonly TableName[];
  files: readonly string[];
}

interface ClassedTable {
  schema: string;
  name: string;
  scopeKind: string;
  tenantVia?: { path: readonly { to: { schema: string; name: string } }[] } | undefined;
}

/**
 * Tenant tables get the class the config names them in. A table in no class that reaches its
 * tenant through a classed table (rsvp answers through guests) takes the class of the nearest one
 * on its path: its rows cannot outlive the rows they hang on (a restore could not put back a
 * NOT NULL reference to an expired guest, and would refuse the whole point). Platform tables stay
 * the platform's.
 */
export function withClasses<T extends ClassedTable>(
  tables: T[],
  classes: readonly ClassMembers[] = [],
): (T & { dataClass?: string })[] {
  if (classes.length === 0) return tables;
  const listed = (t: { schema: string; name: string }) =>
    classes.find((k) =>
      k.tables.some((x) => x.table === t.name && (x.schema === undefined || x.schema === t.schema)),
    )?.name;
  return tables.map((t) => {
    if (t.scopeKind === 'platform') return t;
    const dataClass =
      listed(t) ?? t.tenantVia?.path.map((hop) => listed(hop.to)).find((c) => c !== undefined);
    return dataClass ? { ...t, dataClass } : t;
  });
}

/**
 * Wraps a files source's path → scope mapping: a tenant's file matching a class's pattern goes
 * under the class scope. Platform files stay the platform's (a class keys tenants' data only).
 */
export function classifyFiles(
  scopeOf: (relPath: string) => KeyScope,
  classes: readonly ClassMembers[] = [],
): (relPath: string) => KeyScope {
  const rules = classes.flatMap((c) =>
    c.files.map((pattern) => ({ match: picomatch(pattern, { dot: true }), name: c.name })),
  );
  if (rules.length === 0) return scopeOf;
  return (relPath) => {
    const scope = scopeOf(relPath);
    if (scope === PLATFORM_SCOPE || tenantOfScope(scope) !== scope) return scope;
    const rule = rules.find((r) => r.match(relPath));
    return rule ? classScope(scope, rule.name) : scope;
  };
}

/** The weddings of a database point with their ceremony dates, from the first copy that opens it. */
export async function tenantsOfPoint(
  copies: readonly { storage: Storage }[],
  masterKey: Buffer,
  snapshotId: string,
): Promise<PgTree['tenants'] | undefined> {
  for (const { storage } of copies) {
    const repo = await Repository.open(storage, masterKey).catch(() => undefined);
    const snap = await repo?.loadSnapshot(snapshotId).catch(() => undefined);
    const pg = snap && snapshotTree(snap.tree).postgres;
    if (pg) return pg.tenants;
  }
  return undefined;
}
