/** Turns a validated backup request into a catalog operation and a prioritised backup job. */
import { randomUUID } from 'node:crypto';
import { createOperation } from '../catalog/operations.js';
import type { AppContext } from '../context.js';
import { JOBS, QUEUES, jobIds } from '../queues/names.js';
import type { BackupPayload } from '../queues/payloads.js';
import { priorityFor } from '../queues/priority.js';
import { ceremonyDateOf } from './ceremony.js';

export interface BackupRequest {
  type: BackupPayload['type'];
  components?: BackupPayload['components'];
  weddingId?: string | undefined;
}

export interface EnqueuedBackup {
  operationId: string;
  priority: number;
  ceremonyDate: string | undefined;
}

export async function requestBackup(
  ctx: AppContext,
  req: BackupRequest,
  requestedBy?: string,
  now = new Date(),
): Promise<EnqueuedBackup> {
  let ceremonyDate: string | undefined;
  if (req.weddingId) {
    try {
      ceremonyDate = await ceremonyDateOf(ctx.config.sources.postgres, req.weddingId);
    } catch (err) {
      // Priority is a hint: an unreachable source must not refuse the backup request itself.
      ctx.log.warn({ err, weddingId: req.weddingId }, 'ceremony date lookup failed; default priority');
    }
  }
  const priority = priorityFor(ceremonyDate, now);
  const operationId = randomUUID();
  const components = req.components?.length
    ? req.components
    : req.type === 'files'
      ? (['files'] as const)
      : (['database', 'files'] as const);
  await createOperation(ctx.db, {
    id: operationId,
    type: req.type,
    priority,
    weddingId: req.weddingId,
    components: [...components],
    requestedBy,
  });
  const payload: BackupPayload = {
    operationId,
    type: req.type,
    components: [...components],
    weddingId: req.weddingId,
  };
  await ctx.queues.queues[QUEUES.backup].add(JOBS.backup, payload, {
    jobId: jobIds.backup(operationId),
    priority,
  });
  return { operationId, priority, ceremonyDate };
}
