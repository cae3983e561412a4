/** Plan processor: one cadence planner tick (every wedding's due backups enqueued). */
import type { Job } from 'bullmq';
import type { AppContext } from '../context.js';
import { runCadenceTick, type TickResult } from '../producers/cadence.js';
import { planPayload } from '../queues/payloads.js';
import { admitUnderBackpressure } from './hold.js';

export async function processPlan(job: Job, ctx: AppContext): Promise<TickResult> {
  planPayload.parse(job.data);
  return runCadenceTick(ctx, { admit: admitUnderBackpressure(ctx) });
}
