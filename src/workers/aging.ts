/**
 * The aging sweep: reads the prioritised jobs of a queue and promotes those past their tier's
 * bound (src/policy/aging.ts). `load-loops.ts` runs it every few seconds in one process at a time.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { LoadTier } from '../config/index.js';
import { agingDecision, type Promotion, type WaitingJob } from '../policy/aging.js';

const PAGE = 5_000;

/**
 * One pass over a queue; `now` is the clock the bounds are measured with. Returns what it
 * promoted. Reads only three fields per prioritised job (pipelined), so a pass over 100,000
 * waiting jobs costs a few hundred milliseconds of Redis time, not a load of every job.
 */
export async function sweepAging(
  queue: Queue,
  redis: Redis,
  now: number,
  boundsMs: Readonly<Record<LoadTier, number>>,
): Promise<Promotion[]> {
  const ids = await redis.zrange(queue.toKey('prioritized'), '0', '-1');
  const waiting: WaitingJob[] = [];
  for (let at = 0; at < ids.length; at += PAGE) {
    const page = ids.slice(at, at + PAGE);
    const pipe = redis.pipeline();
    for (const id of page) pipe.hmget(queue.toKey(id), 'timestamp', 'delay', 'priority');
    const rows = (await pipe.exec()) ?? [];
    page.forEach((id, i) => {
      const [timestamp, delay, priority] = (rows[i]?.[1] ?? []) as (string | null)[];
      if (timestamp == null) return; // removed meanwhile
      waiting.push({ id, priority: Number(priority ?? 0), dueAt: Number(timestamp) + Number(delay ?? 0) });
    });
  }
  const promoted = agingDecision(waiting, now, boundsMs);
  for (const p of promoted) {
    // a job that started meanwhile is no longer in the priority set: changePriority leaves it there
    await (await queue.getJob(p.id))?.changePriority({ priority: 0 });
  }
  return promoted;
}
