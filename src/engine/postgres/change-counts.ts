/**
 * Rows changed per wedding since the last look, for event triggers: a logical slot of its own
 * (test_decoding) is consumed and its change lines counted by the tenant column's value, in SQL,
 * so only one row per wedding crosses the wire. Counted: inserts and updates of tables with the
 * tenant column (deletes carry only the key unless the table's replica identity is full).
 * The slot keeps WAL while nobody reads it: turning event triggers off should drop it
 * (`dropEventSlot`).
 */
import pg from 'pg';

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Creates the slot when it is missing; changes count from then on. */
export async function ensureEventSlot(url: string, slot: string): Promise<boolean> {
  return withClient(url, async (c) => {
    const { rows } = await c.query(
      `SELECT pg_create_logical_replication_slot($1, 'test_decoding')
        WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`,
      [slot],
    );
    return rows.length > 0;
  });
}

export async function dropEventSlot(url: string, slot: string): Promise<void> {
  await withClient(url, (c) =>
    c.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, [
      slot,
    ]),
  );
}

/** test_decoding prints `col[type]:value`, text quoted with '' for a quote; the column as quote_ident has it. */
const reEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Consumes the slot's changes; per wedding, how many row changes named it. */
export async function takeRowChangeCounts(
  url: string,
  opts: { slot: string; tenantKey: string },
): Promise<Map<string, number>> {
  return withClient(url, async (c) => {
    const ident = (await c.query<{ q: string }>(`SELECT quote_ident($1) AS q`, [opts.tenantKey])).rows[0]!.q;
    const pattern = ` ${reEscape(ident)}\\[[^\\]]*\\]:(?:'((?:[^']|'')*)'|([^ ]+))`;
    const { rows } = await c.query<{ wedding: string; n: number }>(
      `SELECT replace(coalesce(m[1], m[2]), '''''', '''') AS wedding, count(*)::int AS n
         FROM (SELECT regexp_match(data, $2) AS m
                 FROM pg_logical_slot_get_changes($1, NULL, NULL)
                WHERE data LIKE 'table %: INSERT:%' OR data LIKE 'table %: UPDATE:%') changes
        WHERE m IS NOT NULL AND coalesce(m[1], m[2]) <> 'null'
        GROUP BY 1`,
      [opts.slot, pattern],
    );
    return new Map(rows.map((r) => [r.wedding, r.n]));
  });
}
