/**
 * One pass of the event triggers: rows changed per wedding (the events slot, consumed) and bytes
 * uploaded per wedding (directory sources scanned since the last pass) are added to per-wedding
 * tallies in Redis; a wedding whose tally passes its threshold gets a backup now and starts over.
 * Tallies lapse a day after they start, so small changes do not add up forever.
 */
import type { AppContext } from '../context.js';
import { takeRowChangeCounts, ensureEventSlot } from '../engine/postgres/change-counts.js';
import { uploadedBytes } from '../engine/files/uploads.js';
import { eventTriggers } from '../policy/event-triggers.js';
import { enqueueEventBackups, type TriggeredBackup } from '../producers/events.js';

const TALLY_TTL_S = 86_400;

async function tally(
  ctx: AppContext,
  kind: string,
  counts: Map<string, number>,
): Promise<Map<string, number>> {
  const key = `${ctx.queues.prefix}:load:events:${kind}`;
  if (counts.size === 0) return new Map();
  const multi = ctx.queues.connection.multi();
  for (const [id, n] of counts) multi.hincrbyfloat(key, id, n);
  multi.expire(key, TALLY_TTL_S, 'NX');
  const results = (await multi.exec()) ?? [];
  const ids = [...counts.keys()];
  return new Map(ids.map((id, i) => [id, Number(results[i]?.[1] ?? 0)]));
}

export async function checkEventTriggers(ctx: AppContext, now = Date.now()): Promise<TriggeredBackup[]> {
  const { events } = ctx.config.load;
  const source = ctx.config.sources.postgres;
  const redis = ctx.queues.connection;
  let rows = new Map<string, number>();
  if (events.rows > 0) {
    await ensureEventSlot(source.url, events.slot);
    rows = await tally(
      ctx,
      'rows',
      await takeRowChangeCounts(source.url, { slot: events.slot, tenantKey: source.tenantKey }),
    );
  }
  let bytes = new Map<string, number>();
  if (events.megabytes > 0) {
    const sinceKey = `${ctx.queues.prefix}:load:events:since`;
    const since = Number((await redis.get(sinceKey)) ?? now - events.everySeconds * 1000);
    const found = new Map<string, number>();
    for (const f of ctx.config.sources.files) {
      if (!f.path) continue;
      for (const [id, n] of await uploadedBytes(f.path, f.scopes, since))
        found.set(id, (found.get(id) ?? 0) + n);
    }
    await redis.set(sinceKey, String(now));
    bytes = await tally(ctx, 'bytes', found);
  }
  const triggers = eventTriggers(rows, bytes, events);
  const done = await enqueueEventBackups(ctx, triggers, new Date(now));
  for (const t of done) {
    await redis.hdel(
      `${ctx.queues.prefix}:load:events:${t.component === 'database' ? 'rows' : 'bytes'}`,
      t.weddingId,
    );
    ctx.log.info(
      { weddingId: t.weddingId, jobId: t.jobId, why: t.why, added: t.added },
      'event trigger: backup brought forward',
    );
  }
  return done;
}
