/** Turns a validation request into its catalog test row and a verify job, both or neither. */
import { randomUUID } from 'node:crypto';
import { createTest } from '../catalog/backup-tests.js';
import { transaction } from '../catalog/db.js';
import { getRecoveryPoint } from '../catalog/recovery-points.js';
import type { AppContext } from '../context.js';
import { NotFoundError } from '../errors.js';
import { onRequestPath } from '../queues/connection.js';
import { JOBS, QUEUES, jobIds } from '../queues/names.js';
import type { VerifyPayload } from '../queues/payloads.js';
import { PRIORITY } from '../queues/priority.js';

export interface ValidationRequest {
  recoveryPointId: string;
  mode: 'quick' | 'full' | 'drill';
  sample?: number | undefined;
}

/** Returns the new test's id. */
export async function requestValidation(ctx: AppContext, req: ValidationRequest): Promise<string> {
  const point = await getRecoveryPoint(ctx.db, req.recoveryPointId);
  if (!point) throw new NotFoundError(`recovery point ${req.recoveryPointId} not found`);
  const testId = randomUUID();
  const data: VerifyPayload = {
    recoveryPointId: point.id,
    testId,
    mode: req.mode,
    sample: req.sample,
    trigger: 'demand',
  };
  // The row commits only once Redis took the job (the verify worker upserts it if it starts first).
  await transaction(ctx.db, async (client) => {
    await createTest(client, { id: testId, recoveryPointId: point.id, mode: req.mode });
    await onRequestPath(ctx.queues, (q) =>
      q[QUEUES.verify].add(JOBS.verify, data, {
        jobId: jobIds.validation(testId),
        priority: PRIORITY.maintenance,
      }),
    );
  });
  return testId;
}
