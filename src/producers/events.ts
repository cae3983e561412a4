/**
 * Event triggers' backups: a wedding that changed a lot gets a backup now. One waiting backup per
 * wedding and type (BullMQ deduplication): repeated triggers collapse, and a waiting delayed one
 * (deferred, or planned for later) is brought forward to now instead of a second being added.
 */
import type { AppContext } from '../context.js';
import { lookupWedding } from '../engine/postgres/ceremony.js';
import type { EventTrigger } from '../policy/event-triggers.js';
import { weddingBackupDedupId } from '../queues/load.js';
import { JOBS, QUEUES } from '../queues/names.js';
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
    const data: BackupPayload = {
      type,
      components: [t.component],
      weddingId: t.weddingId,
      trigger: 'event',
      requestedBy: `event: ${t.why}`,
    };
    const dedupId = weddingBackupDedupId(t.weddingId, type);
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
