/**
 * Event triggers' backups: a wedding that changed a lot gets a backup now. They share the cadence
 * planner's deduplication ids (src/producers/cadence.ts): per wedding and component, or in
 * coalesced mode the one whole-source job per component. So repeated triggers and the planner's
 * own jobs collapse into one waiting backup, and a delayed one (deferred) is brought forward to now.
 */
import type { AppContext } from '../context.js';
import { lookupWedding } from '../engine/postgres/ceremony.js';
import type { EventTrigger } from '../policy/event-triggers.js';
import { JOBS, QUEUES, jobIds } from '../queues/names.js';
import type { BackupPayload } from '../queues/payloads.js';
import { priorityFor } from '../queues/priority.js';

export interface TriggeredBackup extends EventTrigger {
  jobId: string;
  /** False when the wedding already had a backup of this type waiting (now brought forward). */
  added: boolean;
}

export async function enqueueEventBackups(
  ctx: AppContext,
  triggers: readonly EventTrigger[],
  now = new Date(),
): Promise<TriggeredBackup[]> {
  const out: TriggeredBackup[] = [];
  for (const t of triggers) {
    const wedding = await lookupWedding(ctx.config.sources.postgres, t.weddingId).catch(() => undefined);
    const type = t.component === 'database' ? 'incremental' : 'files';
    const coalesced = ctx.config.scheduling.jobs === 'coalesced';
    const data: BackupPayload = {
      type,
      components: [t.component],
      // a coalesced backup reads the whole source; the wedding that triggered it is in requestedBy
      ...(coalesced ? {} : { weddingId: t.weddingId }),
      trigger: 'event',
      requestedBy: `event: wedding ${t.weddingId}: ${t.why}`,
    };
    const dedupId = coalesced
      ? jobIds.coalescedBackup(t.component)
      : jobIds.weddingBackup(t.weddingId, t.component);
    const queue = ctx.queues.queues[QUEUES.backup];
    const waiting = await queue.getDeduplicationJobId(dedupId);
    const job = await queue.add(JOBS.backup, data, {
      priority: priorityFor(wedding?.ceremonyDate, now, wedding?.timeZone),
      deduplication: { id: dedupId, reschedule: true },
    });
    out.push({ ...t, jobId: String(job.id), added: !waiting || waiting !== job.id });
  }
  return out;
}
