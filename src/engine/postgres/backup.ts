/**
 * PostgreSQL source: every table from one exported snapshot, in foreign-key order; each table
 * planned (plan.ts: the parent's rows, a delta, or a copy) and stored by copy-table.ts.
 */
import pg from 'pg';
import type { CeremonyColumn, TenancyOverride } from '../../config/index.js';
import { PLATFORM_SCOPE, weddingScope, type ContentWriter } from '../api.js';
import { withClasses, type ClassMembers } from '../classes.js';
import type { PgTable, PgTree } from '../tree.js';
import {
  foreignKeyOrder,
  isCeremonyTable,
  qualified,
  readSequences,
  readTables,
  readTenancyFacts,
  type PgTableInfo,
  type SchemaSettings,
} from './catalog.js';
import { changesSince, plainLoggedTables, tableKey, type TableChanges } from './changes.js';
import { copyTable, deltaTable, Interned, pick } from './copy-table.js';
import { readMarks, rowsUnchangedSince } from './marks.js';
import { readMaterializedViews } from './matviews.js';
import { planTable, probed } from './plan.js';
import { SnapshotSession } from './session.js';
import { tableLabel, tenancySettings } from './tenancy.js';
import { tenancyRecord, withTenancy } from './tenancy-record.js';
import { foreignKeysOf } from './references.js';
import { rowsThroughQuery, tenantJoins } from './tenant-rows.js';

export interface PostgresBackupOptions extends SchemaSettings {
  url: string;
  /** Tables copied at once, each on its own connection sharing the snapshot. */
  parallel?: number;
  /** Segments of one table handed to the writer before waiting for the oldest. */
  inFlight?: number;
  /** work_mem of the copying sessions, for the (tenant, key) sorts no index provides. */
  sortMemory?: string;
  /** The last backup of this database: tables unchanged since it are not read again. */
  parent?: PgTree | undefined;
  /**
   * Create a logical replication slot with the backup's snapshot (needs wal_level = logical), so
   * the next backup learns which rows changed instead of reading changed tables whole.
   */
  changeSlot?: boolean;
  /** Slot names start with this (a repository's slots are told apart from others'). */
  slotPrefix?: string;
  /** `sources.postgres.tenancy`: tables whose tenancy the config decides. */
  tenancy?: TenancyOverride[] | undefined;
  /** Scopes of the erasure ledger: their rows are left out (and counted in the tree's `erased`). */
  erased?: ReadonlySet<string> | undefined;
  /** Retention classes: their tables' tenant rows are sealed under `wedding:<id>/<class>`. */
  classes?: readonly ClassMembers[] | undefined;
}

/** What every table's backup shares: the writer, the parent's tables, what the change slot saw. */
interface TableContext {
  writer: ContentWriter;
  inFlight: number;
  interned: Interned;
  marks: Map<string, string>;
  /** This backup's tables, by qualified name. */
  tables: Map<string, PgTableInfo>;
  parentTables: Map<string, PgTable>;
  parentSnapshot: string | undefined;
  changes: Map<string, TableChanges> | undefined;
  logged: Set<string>;
}

/**
 * Rows of an FK-reached table that a change on its path may have moved to another tenant (a guest
 * moved to another wedding takes its answers along): the keys of rows below an updated row, or
 * why the table must be read whole. Inserts and deletes move no row that stays: a delete cascades
 * to the rows below, which the slot then names.
 */
async function movedRows(
  client: pg.ClientBase,
  t: PgTableInfo,
  ctx: TableContext,
): Promise<TableChanges | string | undefined> {
  if (!t.tenantVia || !ctx.parentTables.has(qualified(t))) return undefined;
  let moved: TableChanges | undefined;
  for (const { hop, alias } of tenantJoins(t.tenantVia).joined) {
    const key = qualified(hop.to);
    const label = tableLabel(hop.to);
    if (!ctx.changes || !ctx.logged.has(key)) {
      const now = ctx.marks.get(key);
      if (now === undefined || now !== ctx.parentTables.get(key)?.marks)
        return `${label} on its tenant path changed since the parent`;
      continue;
    }
    const changes = ctx.changes.get(tableKey(hop.to.schema, hop.to.name));
    if (!changes?.updated) continue;
    const target = ctx.tables.get(key);
    if (changes.whole || !target?.primaryKey.length)
      return `the change slot cannot name the changed rows of ${label}, on its tenant path`;
    const keyColumns = target.primaryKey.map((k) => target.columns.find((c) => c.name === k)!);
    const q = rowsThroughQuery(t, alias, keyColumns, [...changes.keys.values()]);
    const { rows } = await client.query<string[]>({ text: q.text, values: q.values, rowMode: 'array' });
    moved ??= { keys: new Map(), existed: 0, whole: false };
    for (const row of rows) moved.keys.set(JSON.stringify(row), row);
  }
  return moved;
}

/** One table, as its plan says: the parent's rows, a delta on them, or a copy. */
async function backupTable(client: pg.ClientBase, t: PgTableInfo, ctx: TableContext): Promise<PgTable> {
  const key = qualified(t);
  const marks = ctx.marks.get(key);
  const first = planTable({
    table: t,
    marks,
    parent: ctx.parentTables.get(key),
    parentSnapshot: ctx.parentSnapshot,
    slot: ctx.changes && {
      changed: ctx.changes.get(tableKey(t.schema, t.name)),
      logged: ctx.logged.has(key),
    },
    moved: await movedRows(client, t, ctx),
  });
  const plan =
    first.action === 'probe'
      ? probed(first, await rowsUnchangedSince(client, t, first.parent, first.parentSnapshot))
      : first;
  switch (plan.action) {
    case 'reuse':
      return { ...t, ...pick(plan.parent), marks, reused: true };
    case 'delta': {
      const table = await deltaTable(
        client,
        t,
        plan.parent,
        plan.changes,
        ctx.writer,
        ctx.inFlight,
        ctx.interned,
      );
      return { ...table, marks };
    }
    case 'copy':
      return { ...(await copyTable(client, t, ctx.writer, ctx.inFlight, ctx.interned)), marks };
  }
}

/** The weddings of the tenant table, with their ceremony dates. */
async function readTenants(
  client: pg.ClientBase,
  tables: PgTableInfo[],
  ceremony: CeremonyColumn,
): Promise<PgTree['tenants']> {
  const tenantTable = tables.find((t) => isCeremonyTable(t, ceremony) && t.scopeKind === 'wedding');
  if (!tenantTable) return [];
  const { rows } = await client.query<{ id: string; d: string | null }>(
    `SELECT ${pg.escapeIdentifier(tenantTable.tenantColumn!)}::text AS id,
            ${pg.escapeIdentifier(ceremony.column)}::date::text AS d
       FROM ${qualified(tenantTable)} ORDER BY 1`,
  );
  return rows.map((r) => ({ id: r.id, ceremonyDate: r.d }));
}

/** The tables with their dump position, biggest first, so the parallel connections finish together. */
async function biggestFirst(
  client: pg.ClientBase,
  tables: PgTableInfo[],
): Promise<{ t: PgTableInfo; i: number }[]> {
  const sizes = await client.query<{ schema: string; name: string; b: string }>(
    `SELECT n.nspname AS schema, c.relname AS name,
            (SELECT sum(pg_total_relation_size(p.relid)) FROM pg_partition_tree(c.oid) p)::text AS b
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition`,
  );
  // keyed by qualified(), as the lookup below spells a table (format('%I') quotes only where needed)
  const size = new Map(sizes.rows.map((r) => [qualified(r), Number(r.b)]));
  const sizeOf = (t: PgTableInfo) => size.get(qualified(t)) ?? 0;
  return tables.map((t, i) => ({ t, i })).sort((a, b) => sizeOf(b.t) - sizeOf(a.t));
}

export async function backupPostgres(writer: ContentWriter, opts: PostgresBackupOptions): Promise<PgTree> {
  const session = await SnapshotSession.open({
    url: opts.url,
    changeSlot: opts.changeSlot,
    slotPrefix: opts.slotPrefix,
    parentSlot: opts.parent?.changes?.slot,
  });
  try {
    const c = session.coordinator;
    // classified in the backup's snapshot, so the tree says who owned the rows it holds
    const facts = await readTenancyFacts(c);
    const tenancy = tenancyRecord(facts, tenancySettings(opts));
    // in foreign-key order, so a restore into a live schema can insert table after table
    const tables = await foreignKeyOrder(
      c,
      withClasses(withTenancy(await readTables(c, opts), tenancy), opts.classes),
    );
    // Reading the parent slot's changes takes PostgreSQL a while (it decodes the WAL since): it
    // runs beside the catalog reads and connections below.
    const parentSlot = session.changes && opts.parent?.changes?.slot;
    const changesRead = parentSlot ? changesSince(opts.url, parentSlot, tables) : undefined;
    changesRead?.catch(() => undefined); // awaited below
    const sequences = await readSequences(c);
    const materializedViews = await readMaterializedViews(c);
    const tenants = (await readTenants(c, tables, opts.ceremonyDate)).filter(
      (t) => !opts.erased?.has(weddingScope(t.id)),
    );
    // pg_dump runs beside the table copies: its start-up and catalog reads cost a second or so.
    const schema = Promise.all([
      writer.write(PLATFORM_SCOPE, session.schema('pre-data'), { compress: true }),
      writer.write(PLATFORM_SCOPE, session.schema('post-data'), { compress: true }),
    ]);
    schema.catch(() => undefined); // awaited below
    const parallel = Math.min(Math.max(1, opts.parallel ?? 2), tables.length);
    const workers = await session.connectWorkers(parallel, opts.sortMemory ?? '64MB');
    const queue = await biggestFirst(c, tables);
    const marks = await readMarks(c);
    const changes = await changesRead;
    const ctx: TableContext = {
      writer,
      inFlight: opts.inFlight ?? 32,
      interned: new Interned(opts.erased),
      marks,
      tables: new Map(tables.map((t) => [qualified(t), t])),
      parentTables: new Map((opts.parent?.tables ?? []).map((p) => [qualified(p), p])),
      parentSnapshot: opts.parent?.xidSnapshot,
      changes,
      logged: changes ? await plainLoggedTables(c) : new Set<string>(),
    };
    const done: PgTable[] = new Array(tables.length);
    await Promise.all(
      workers.map(async (client) => {
        for (let job = queue.shift(); job; job = queue.shift())
          done[job.i] = await backupTable(client, job.t, ctx);
      }),
    );
    const [preData, postData] = await schema;
    const head = session.head;
    session.keep();
    const slot = session.changes;
    return {
      kind: 'postgres',
      database: head.db,
      serverVersion: head.version,
      snapshotTime: head.time.toISOString(),
      lsn: head.lsn,
      schema: { preData, postData },
      sequences,
      materializedViews,
      tables: done,
      tenants,
      xidSnapshot: head.xids,
      tenancy,
      foreignKeys: foreignKeysOf(facts),
      ...(ctx.interned.skipped.size
        ? { erased: [...ctx.interned.skipped].map(([scope, rows]) => ({ scope, rows })) }
        : {}),
      ...(slot ? { changes: slot } : {}),
    };
  } finally {
    await session.close();
  }
}
