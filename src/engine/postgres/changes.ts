/**
 * Row changes between two backups, from a logical replication slot.
 *
 * A backup with change slots on creates a slot (test_decoding) whose exported snapshot is the one
 * it reads every table in: the slot's stream then holds exactly the transactions that snapshot did
 * not see. The next backup creates its own slot and snapshot, then peeks the previous slot's
 * stream (never consuming it, so a failed backup can try again) and learns, per table, the primary
 * keys of every row inserted, updated or deleted since. It peeks to the end of the WAL, past its own
 * snapshot: a key named for a change the new snapshot does not hold yet is only read as that
 * snapshot has it (and named again by the next backup); naming more keys than needed is safe,
 * naming fewer would not be, so the boundary between the two snapshots never has to be exact. The
 * previous slot is dropped once the new snapshot is saved.
 */
import { randomBytes } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import pg from 'pg';
import { copyOut } from './copy-out.js';
import { ConfigError, TransientError } from '../../errors.js';
import { pinOutputSettings, qualified, type PgTableInfo } from './catalog.js';

export interface ChangeSlot {
  slot: string;
  /** The slot's consistent point: its stream starts with the first transaction the snapshot misses. */
  lsn: string;
  /** Importable with SET TRANSACTION SNAPSHOT while `close` has not been called. */
  snapshot: string;
  close(): Promise<void>;
}

/** What changed in one table: the changed rows' keys (each the key columns' text), or everything. */
export interface TableChanges {
  keys: Map<string, string[]>;
  /**
   * How many of the keys were there in the previous backup's snapshot: a key's first change in
   * the stream is an update or delete of it (an insert, or the new key of an update that changed
   * the key, means it was not).
   */
  existed: number;
  /** A truncation, a delete without its key, a key the stream cannot give: read the whole table. */
  whole: boolean;
  /**
   * An UPDATE touched it. The stream gives an update's old values only for a changed key, so the
   * rows of tables that reach their tenant through this one may have moved to another tenant.
   */
  updated?: boolean;
}

/** A slot not taken over by a newer backup this long after its creation was left by a failed one. */
const STALE_MS = 6 * 3600_000;

/**
 * Creates a slot on a replication connection; the connection stays open to keep the snapshot. The
 * name is `prefix`, the creation time (base 36 milliseconds) and a random part.
 */
export async function createChangeSlot(url: string, prefix = 'wedvault_'): Promise<ChangeSlot> {
  const slot = `${prefix}${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  // a logical replication connection (the pg types do not list the option)
  const conn = new pg.Client({ connectionString: url, replication: 'database' } as pg.ClientConfig);
  try {
    await conn.connect();
  } catch (err) {
    throw new TransientError(`source database unreachable: ${(err as Error).message}`, { cause: err });
  }
  try {
    const { rows } = await conn.query<{ consistent_point: string; snapshot_name: string }>(
      `CREATE_REPLICATION_SLOT ${slot} LOGICAL test_decoding EXPORT_SNAPSHOT`,
    );
    const { consistent_point: lsn, snapshot_name: snapshot } = rows[0]!;
    return { slot, lsn, snapshot, close: () => conn.end().catch(() => undefined) };
  } catch (err) {
    await conn.end().catch(() => undefined);
    const msg = (err as Error).message;
    throw new ConfigError(
      `change slot could not be created (needs wal_level = logical, a free replication slot and the REPLICATION attribute): ${msg}`,
      { cause: err },
    );
  }
}

/** Drops a slot of this database if it is there; a slot in use by another session is left. */
export async function dropChangeSlot(url: string, slot: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(
      `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
        WHERE slot_name = $1 AND database = current_database() AND NOT active`,
      [slot],
    );
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * Drops this prefix's slots that are idle, older than six hours and not `keep`: slots of backups
 * that died before saving their snapshot, which would otherwise hold WAL on the source forever.
 */
export async function dropStaleSlots(
  client: pg.ClientBase,
  prefix: string,
  keep: string | undefined,
): Promise<string[]> {
  const { rows } = await client.query<{ slot_name: string }>(
    `SELECT slot_name FROM pg_replication_slots
      WHERE database = current_database() AND NOT active AND starts_with(slot_name, $1)`,
    [prefix],
  );
  const dropped: string[] = [];
  for (const { slot_name: name } of rows) {
    const born = parseInt(name.slice(prefix.length).split('_')[0] ?? '', 36);
    if (name === keep || !Number.isFinite(born) || Date.now() - born < STALE_MS) continue;
    await client.query(
      'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active',
      [name],
    );
    dropped.push(name);
  }
  return dropped;
}

/** A table's identity in the stream and in the catalog. */
export const tableKey = (schema: string, name: string): string => `${schema}\u0000${name}`;

/**
 * Changes of every table since `slot` was created, to the end of the WAL; undefined when the slot is
 * gone (dropped, or invalidated for the WAL it held). `keyColumns` names each table's key; tables it
 * does not know are reported whole.
 */
export async function readChanges(
  client: pg.ClientBase,
  slot: string,
  keyColumns: (table: string) => string[] | undefined,
  maxKeys = 500_000,
): Promise<Map<string, TableChanges> | undefined> {
  const exists = await client.query(
    `SELECT 1 FROM pg_replication_slots
      WHERE slot_name = $1 AND database = current_database() AND plugin = 'test_decoding'
        AND (wal_status IS NULL OR wal_status <> 'lost')`,
    [slot],
  );
  if (!exists.rowCount) return undefined;
  const out = new Map<string, TableChanges>();
  const of = (key: string) => {
    let t = out.get(key);
    if (!t) out.set(key, (t = { keys: new Map(), existed: 0, whole: false }));
    return t;
  };
  const take = (data: string) => {
    const change = parseChange(data);
    if (!change) return;
    for (const [schema, name] of change.tables) {
      const key = tableKey(schema, name);
      const t = of(key);
      const cols = keyColumns(key);
      if (change.action === 'UPDATE') t.updated = true;
      if (t.whole) continue;
      if (change.action === 'TRUNCATE' || !cols || (!change.old && !change.new)) {
        t.whole = true;
        t.keys.clear();
        continue;
      }
      for (const tuple of [change.old, change.new]) {
        if (!tuple) continue;
        const values = cols.map((c) => tuple.get(c));
        if (values.some((v) => v === undefined || v === null || v === UNCHANGED_TOAST)) {
          t.whole = true;
          t.keys.clear();
          break;
        }
        const id = JSON.stringify(values);
        if (t.keys.has(id)) continue;
        t.keys.set(id, values as string[]);
        // the tuple an update or delete names by its old key, or an update's only (same) key
        if (tuple === change.old || (change.action === 'UPDATE' && !change.old)) t.existed++;
      }
      // past this many changed rows the table is read whole anyway: keep memory bounded
      if (t.keys.size > maxKeys) {
        t.whole = true;
        t.existed = 0;
        t.keys.clear();
      }
    }
  };
  // streamed: the stream can be long, and only the keys are kept
  const source = client.query(
    copyOut(
      `COPY (SELECT data FROM pg_logical_slot_peek_changes(${pg.escapeLiteral(slot)}, NULL,
         NULL, 'include-xids', '0', 'skip-empty-xacts', '1')) TO STDOUT`,
    ),
  );
  const text = new StringDecoder('utf8');
  let carry = '';
  for await (const chunk of source as AsyncIterable<Buffer>) {
    const lines = (carry + text.write(chunk)).split('\n');
    carry = lines.pop()!;
    for (const l of lines) take(unescapeCopy(l));
  }
  if (carry) throw new TransientError('change stream ended inside a line');
  return out;
}

/** COPY text format's escapes undone (one column, so no delimiter to mind). */
export function unescapeCopy(field: string): string {
  if (!field.includes('\\')) return field;
  return field.replace(/\\(.)/g, (_, c: string) => COPY_ESCAPES[c] ?? c);
}
const COPY_ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

/** A column value in the stream: its text, null for SQL NULL. */
type Tuple = Map<string, string | null>;

export interface Change {
  tables: [string, string][];
  action: 'INSERT' | 'UPDATE' | 'DELETE' | 'TRUNCATE';
  /** The old key (UPDATE when the key changed, DELETE). */
  old?: Tuple;
  new?: Tuple;
}

/** A toasted value an UPDATE did not change: test_decoding does not print it. */
export const UNCHANGED_TOAST = 'unchanged-toast-datum';

/**
 * Parses one line of test_decoding output; undefined for BEGIN, COMMIT and messages. Throws on a
 * line it cannot read (better a failed backup than a missed change).
 */
export function parseChange(line: string): Change | undefined {
  if (!line.startsWith('table ')) return undefined;
  let i = 6;
  const bad = (why: string) =>
    new TransientError(`change stream line not understood (${why}): ${line.slice(0, 200)}`);

  /** Text between `quote`s at i (the opening one included), a doubled quote standing for one. */
  const quoted = (quote: string, what: string): string => {
    let out = '';
    i++;
    for (;;) {
      const q = line.indexOf(quote, i);
      if (q < 0) throw bad(`unterminated ${what}`);
      out += line.slice(i, q);
      if (line[q + 1] === quote) {
        out += quote;
        i = q + 2;
      } else {
        i = q + 1;
        return out;
      }
    }
  };
  const ident = (): string => {
    if (line[i] === '"') return quoted('"', 'identifier');
    const m = /^[^".:,\s[]+/.exec(line.slice(i));
    if (!m) throw bad('identifier expected');
    i += m[0].length;
    return m[0];
  };
  const expect = (s: string) => {
    if (!line.startsWith(s, i)) throw bad(`'${s}' expected`);
    i += s.length;
  };

  const tables: [string, string][] = [];
  for (;;) {
    const schema = ident();
    expect('.');
    tables.push([schema, ident()]);
    if (!line.startsWith(', ', i)) break;
    i += 2;
  }
  expect(': ');
  const action = /^(INSERT|UPDATE|DELETE|TRUNCATE):/.exec(line.slice(i))?.[1] as Change['action'] | undefined;
  if (!action) throw bad('unknown action');
  i += action.length + 1;
  if (action === 'TRUNCATE') return { tables, action };

  const value = (): string | null => {
    if (line[i] === "'" || (line[i] === 'B' && line[i + 1] === "'")) {
      if (line[i] === 'B') i++;
      return quoted("'", 'literal');
    }
    let end = line.indexOf(' ', i);
    if (end < 0) end = line.length;
    const raw = line.slice(i, end);
    i = end;
    return raw === 'null' ? null : raw;
  };
  const tuple = (): Tuple => {
    const t: Tuple = new Map();
    while (line[i] === ' ' && !line.startsWith(' new-tuple:', i)) {
      i++;
      const name = ident();
      expect('[');
      const close = line.indexOf(']:', i);
      if (close < 0) throw bad('column type expected');
      i = close + 2;
      t.set(name, value());
    }
    return t;
  };

  if (line.startsWith(' (no-tuple-data)', i)) return { tables, action };
  if (action === 'UPDATE' && line.startsWith(' old-key:', i)) {
    i += ' old-key:'.length;
    const old = tuple();
    expect(' new-tuple:');
    if (line.startsWith(' (no-tuple-data)', i)) return { tables, action, old };
    return { tables, action, old, new: tuple() };
  }
  const t = tuple();
  if (i !== line.length) throw bad('trailing text');
  return action === 'DELETE' ? { tables, action, old: t } : { tables, action, new: t };
}

/** The changes the parent's slot holds (read after this backup's slot exists); undefined when that slot is gone. */
export async function changesSince(
  url: string,
  slot: string,
  tables: PgTableInfo[],
): Promise<Map<string, TableChanges> | undefined> {
  const keys = new Map(tables.map((t) => [tableKey(t.schema, t.name), t.primaryKey]));
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    // the output plugin prints key values in this session's settings: the copying sessions' ones
    await pinOutputSettings(c);
    return await readChanges(c, slot, (table) => {
      const k = keys.get(table);
      return k && k.length > 0 ? k : undefined;
    });
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * Plain (not partitioned), logged tables whose replica identity is their primary key or the whole
 * row: the only ones whose every row change the slot sees with the old key (with NOTHING, or an
 * index other than the key, an update that changes the key would not say which key it left).
 */
export async function plainLoggedTables(client: pg.ClientBase): Promise<Set<string>> {
  const { rows } = await client.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND NOT c.relispartition AND c.relreplident IN ('d', 'f')`,
  );
  return new Set(rows.map((r) => qualified(r)));
}
