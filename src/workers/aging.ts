/**
 * The aging sweep: reads the prioritised jobs of a queue and promotes those past their tier's
 * bound (src/policy/aging.ts). `load-loops.ts` runs it every few seconds in one process at a time.
 */
import type { Queue } from 'bullmq';
import type { LoadTier } from '../config/index.js';
import { agingDecision, type Promotion } from '../policy/aging.js';

const PAGE = 1_000;

/** One pass over a queue; `now` is the clock the bounds are measured with. Returns what it promoted. */
export async function sweepAging(
  queue: Queue,
  now: number,
  boundsMs: Readonly<Record<LoadTier, number>>,
): Promise<Promotion[]> {
  const waiting = [];
  // read everything first: promoting while paging would shift the pages
  for (let start = 0; ; start += PAGE) {
    const jobs = await queue.getJobs(['prioritized'], start, start + PAGE - 1, true);
    for (const j of jobs)
      if (j?.id) waiting.push({ id: j.id, priority: j.priority, dueAt: j.timestamp + (j.opts.delay ?? 0) });
    if (jobs.length < PAGE) break;
  }
  const promoted = agingDecision(waiting, now, boundsMs);
  for (const p of promoted) {
    const job = await queue.getJob(p.id);
    // a job that started meanwhile is not in the priority set: changePriority leaves it alone
    await job?.changePriority({ priority: 0 });
  }
  return promoted;
}
