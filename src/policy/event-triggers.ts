/** Pure: which weddings changed enough since their last trigger to bring their next backup forward. */

export interface EventThresholds {
  /** Rows changed for one wedding; 0: rows trigger nothing. */
  rows: number;
  /** Megabytes (10^6 bytes) of new or changed files for one wedding; 0: uploads trigger nothing. */
  megabytes: number;
}

export interface EventTrigger {
  weddingId: string;
  component: 'database' | 'files';
  /** For the log and the job: `412 rows changed`, `57.3 MB uploaded`. */
  why: string;
}

export function eventTriggers(
  rows: ReadonlyMap<string, number>,
  bytes: ReadonlyMap<string, number>,
  t: EventThresholds,
): EventTrigger[] {
  const out: EventTrigger[] = [];
  if (t.rows > 0)
    for (const [weddingId, n] of rows)
      if (n >= t.rows) out.push({ weddingId, component: 'database', why: `${n} rows changed` });
  if (t.megabytes > 0)
    for (const [weddingId, n] of bytes)
      if (n >= t.megabytes * 1e6)
        out.push({ weddingId, component: 'files', why: `${(n / 1e6).toFixed(1)} MB uploaded` });
  return out.sort((a, b) => (a.weddingId < b.weddingId ? -1 : a.weddingId > b.weddingId ? 1 : 0));
}
