/**
 * The source-side SQL of continuous capture: its logical slot (created, advanced, watched for loss),
 * the schema fingerprint, the DDL event trigger, and a row's tenant looked up through its path.
 * Everything here needs only the REPLICATION attribute and read access, except installing the
 * event trigger (superuser).
 */
import pg from 'pg';
import { ConfigError, TransientError } from '../../errors.js';
import { rowsOf, tenantJoins, ROW } from './tenant-rows.js';
import type { PgTableInfo } from './catalog.js';
import { tableLabel } from './tenancy.js';

export interface SlotState {
  /** `missing`: no such slot; `lost`: the server removed the WAL it needed (max_slot_wal_keep_size). */
  status: 'ok' | 'missing' | 'lost';
  confirmedLsn?: string | undefined;
  active?: boolean | undefined;
}

export async function slotState(client: pg.ClientBase, slot: string): Promise<SlotState> {
  const { rows } = await client.query<{ lsn: string | null; wal_status: string | null; active: boolean }>(
    `SELECT confirmed_flush_lsn::text AS lsn, wal_status, active FROM pg_replication_slots
      WHERE slot_name = $1 AND database = current_database()`,
    [slot],
  );
  const r = rows[0];
  if (!r) return { status: 'missing' };
  return {
    status: r.wal_status === 'lost' ? 'lost' : 'ok',
    confirmedLsn: r.lsn ?? undefined,
    active: r.active,
  };
}

/** Creates the slot; its consistent point is where its stream begins. */
export async function createCaptureSlot(client: pg.ClientBase, slot: string): Promise<string> {
  try {
    const { rows } = await client.query<{ lsn: string }>(
      `SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'test_decoding')`,
      [slot],
    );
    return rows[0]!.lsn;
  } catch (err) {
    throw new ConfigError(
      `capture slot ${slot} could not be created (needs wal_level = logical, a free replication slot and the REPLICATION attribute): ${(err as Error).message}`,
      { cause: err },
    );
  }
}

export async function dropCaptureSlot(client: pg.ClientBase, slot: string): Promise<void> {
  await client.query(
    `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
      WHERE slot_name = $1 AND database = current_database() AND NOT active`,
    [slot],
  );
}

/** Moves the slot's confirmed position: the server may then recycle the WAL before it. */
export async function advanceSlot(client: pg.ClientBase, slot: string, lsn: string): Promise<void> {
  await client.query('SELECT pg_replication_slot_advance($1, $2::pg_lsn)', [slot, lsn]);
}

export async function currentWalLsn(client: pg.ClientBase): Promise<string> {
  const { rows } = await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  return rows[0]!.lsn;
}

/** A digest of every user table's columns and types: a schema change changes it. */
export async function schemaFingerprint(client: pg.ClientBase): Promise<string> {
  const { rows } = await client.query<{ digest: string }>(
    `SELECT md5(coalesce(string_agg(format('%s.%s.%s:%s', n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod)),
                ',' ORDER BY n.nspname, c.relname, a.attnum), '')) AS digest
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname NOT LIKE 'pg_toast%'`,
  );
  return rows[0]!.digest;
}

export const DDL_TRIGGER = 'wedvault_ddl';

export async function ddlTriggerInstalled(client: pg.ClientBase): Promise<boolean> {
  const { rowCount } = await client.query(
    `SELECT 1 FROM pg_event_trigger WHERE evtname = $1 AND evtenabled <> 'D'`,
    [DDL_TRIGGER],
  );
  return (rowCount ?? 0) > 0;
}

/**
 * The event trigger that writes each DDL statement into the change stream, in its transaction, so
 * recovery replays it in order. Event triggers need a superuser.
 */
export async function installDdlTrigger(client: pg.ClientBase, prefix: string): Promise<void> {
  const fn = `${DDL_TRIGGER}_emit`;
  try {
    await client.query('BEGIN');
    await client.query(`CREATE OR REPLACE FUNCTION public.${fn}() RETURNS event_trigger LANGUAGE plpgsql AS $f$
      BEGIN PERFORM pg_logical_emit_message(true, ${pg.escapeLiteral(prefix)}, current_query()); END $f$`);
    await client.query(`DROP EVENT TRIGGER IF EXISTS ${DDL_TRIGGER}`);
    await client.query(
      `CREATE EVENT TRIGGER ${DDL_TRIGGER} ON ddl_command_end EXECUTE FUNCTION public.${fn}()`,
    );
    await client.query(`DROP EVENT TRIGGER IF EXISTS ${DDL_TRIGGER}_drop`);
    await client.query(
      `CREATE EVENT TRIGGER ${DDL_TRIGGER}_drop ON sql_drop EXECUTE FUNCTION public.${fn}()`,
    );
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw new ConfigError(
      `the DDL event trigger could not be installed (needs a superuser): ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

/** Bytes of WAL the slot holds back: how far the capture is behind the server. */
export async function slotLagBytes(client: pg.ClientBase, slot: string): Promise<number | undefined> {
  const { rows } = await client.query<{ lag: string | null }>(
    `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag FROM pg_replication_slots
      WHERE slot_name = $1 AND database = current_database()`,
    [slot],
  );
  return rows[0]?.lag == null ? undefined : Number(rows[0].lag);
}

/**
 * The tenant of the row of `t` whose `columns` hold `values` (text), through its path when it has
 * one; null for a row with no tenant (a NULL key), undefined when no such row exists (now).
 */
export async function lookupTenant(
  client: pg.ClientBase,
  t: PgTableInfo,
  columns: string[],
  values: string[],
): Promise<string | null | undefined> {
  const via = t.tenantVia ? tenantJoins(t.tenantVia) : undefined;
  const expr = via ? via.expr : t.tenantColumn ? `${ROW}.${pg.escapeIdentifier(t.tenantColumn)}` : 'NULL';
  const type = (c: string) => t.columns.find((x) => x.name === c)?.type ?? 'text';
  const where = columns
    .map((c, i) => `${ROW}.${pg.escapeIdentifier(c)} = $${i + 1}::${type(c)}`)
    .join(' AND ');
  const { rows } = await client.query<{ tenant: string | null }>(
    `SELECT (${expr})::text AS tenant FROM ${rowsOf(t)} ${ROW}${via?.joins ?? ''} WHERE ${where} LIMIT 1`,
    values,
  );
  return rows.length === 0 ? undefined : rows[0]!.tenant;
}

/** Tables whose row changes cannot name their row: no primary key and replica identity default or nothing. */
export async function tablesWithoutIdentity(client: pg.ClientBase): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname NOT LIKE 'pg_toast%'
        AND (c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS
             (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))
      ORDER BY 1`,
  );
  return rows.map((r) => r.name);
}

/** The WAL flushed to disk: every transaction committed at or before it can be decoded now. */
export async function flushedWalLsn(client: pg.ClientBase): Promise<string> {
  const { rows } = await client.query<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn');
  return rows[0]!.lsn;
}

/** Each partition's root table, by label (the stream names the partition a row is in). */
export async function partitionRoots(client: pg.ClientBase): Promise<Map<string, string>> {
  const { rows } = await client.query<{ ps: string; pn: string; rs: string; rn: string }>(
    `SELECT n.nspname AS ps, c.relname AS pn, rn.nspname AS rs, r.relname AS rn
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_class r ON r.oid = pg_partition_root(c.oid) JOIN pg_namespace rn ON rn.oid = r.relnamespace
      WHERE c.relispartition`,
  );
  return new Map(
    rows.map((r) => [tableLabel({ schema: r.ps, name: r.pn }), tableLabel({ schema: r.rs, name: r.rn })]),
  );
}

export interface PitrReadiness {
  walLevel: string;
  /** The connecting role may create and read logical slots (REPLICATION, or a superuser). */
  replication: boolean;
  superuser: boolean;
  /** -1: slots may hold WAL without limit; else megabytes. */
  maxSlotWalKeepSizeMb: number;
  freeSlots: number;
}

export async function pitrReadiness(client: pg.ClientBase): Promise<PitrReadiness> {
  const { rows } = await client.query<{
    wal: string;
    repl: boolean;
    su: boolean;
    keep: string;
    free: number;
  }>(
    `SELECT current_setting('wal_level') AS wal, r.rolreplication AS repl, r.rolsuper AS su,
            current_setting('max_slot_wal_keep_size') AS keep,
            (current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots))::int AS free
       FROM pg_roles r WHERE r.rolname = current_user`,
  );
  const r = rows[0]!;
  const keep = r.keep === '-1' ? -1 : parseKeepSize(r.keep);
  return {
    walLevel: r.wal,
    replication: r.repl || r.su,
    superuser: r.su,
    maxSlotWalKeepSizeMb: keep,
    freeSlots: r.free,
  };
}

function parseKeepSize(text: string): number {
  const m = /^(\d+)\s*(kB|MB|GB|TB)?$/.exec(text);
  if (!m) return -1;
  const n = Number(m[1]);
  return m[2] === 'kB' ? n / 1024 : m[2] === 'GB' ? n * 1024 : m[2] === 'TB' ? n * 1024 * 1024 : n;
}

/** A client of the source, connected; an unreachable source is a TransientError (a retry may help). */
export async function connectSource(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined); // a dropped connection fails the next query, which reports it
  try {
    await c.connect();
  } catch (err) {
    throw new TransientError(`source database unreachable: ${(err as Error).message}`, { cause: err });
  }
  return c;
}
