/** Named restore points: a transactional logical message on the source; its LSN is a recovery target. */
import { connectSource } from '../postgres/pitr-source.js';
import { RESTORE_POINT_PREFIX } from './types.js';

export async function emitRestorePoint(url: string, name: string): Promise<{ lsn: string; time: string }> {
  const c = await connectSource(url);
  try {
    // transactional: the message is in the stream only once committed, like the rows around it
    const { rows } = await c.query<{ lsn: string; time: Date }>(
      `SELECT pg_logical_emit_message(true, $1, $2)::text AS lsn, clock_timestamp() AS time`,
      [RESTORE_POINT_PREFIX, name],
    );
    return { lsn: rows[0]!.lsn, time: rows[0]!.time.toISOString() };
  } finally {
    await c.end();
  }
}
