/** Turns a validated backup request into a prioritised backup job and its catalog operation, once per request. */
import { createHash, randomUUID } from 'node:crypto';
import { transaction } from '../catalog/db.js';
import { createOperation, getOperation } from '../catalog/operations.js';
import { weddingHasPoints } from '../catalog/recovery-points.js';
import {
  findIdempotencyKey,
  findLiveRequest,
  lockRequests,
  recordIdempotencyKey,
} from '../catalog/requests.js';
import type { AppContext } from '../context.js';
import { REQUEST_DEADLINE_MS, withDeadline } from '../deadline.js';
import { NotFoundError, UnprocessableError } from '../errors.js';
import { onRequestPath } from '../queues/connection.js';
import { JOBS, QUEUES, jobIds, stableUuid } from '../queues/names.js';
import type { BackupPayload } from '../queues/payloads.js';
import { priorityFor } from '../queues/priority.js';
import { lookupWedding, type WeddingLookup } from '../engine/postgres/ceremony.js';
import type pg from 'pg';

export interface BackupRequest {
  type: BackupPayload['type'];
  components?: BackupPayload['components'];
  weddingId?: string | undefined;
}

/** Who asks: with an API key id, repeated requests of that key are recognised (see requestBackup). */
export interface RequestOrigin {
  requestedBy?: string | undefined;
  apiKeyId?: string | undefined;
  idempotencyKey?: string | undefined;
}

export interface EnqueuedBackup {
  operationId: string;
  priority: number;
  ceremonyDate: string | undefined;
  /** Set when no operation was created: the request repeated a live one, or replayed its Idempotency-Key. */
  existing?: 'identical' | 'idempotency-key';
}

/**
 * The job is added inside the transaction that inserts the operation's row, and the row commits
 * only once Redis has accepted the job: a request that fails on Redis leaves no row. A job whose
 * add timed out may still land later; the backup worker then creates the row from the payload (its
 * insert also waits for this transaction, so whichever comes first, the worker finds the row).
 */
export async function requestBackup(
  ctx: AppContext,
  req: BackupRequest,
  origin: RequestOrigin = {},
  now = new Date(),
): Promise<EnqueuedBackup> {
  const components = req.components?.length
    ? [...req.components]
    : req.type === 'files'
      ? ['files' as const]
      : ['database' as const, 'files' as const];
  const wedding = req.weddingId ? await findWedding(ctx, req.weddingId) : undefined;
  const priority = priorityFor(wedding?.ceremonyDate, now, wedding?.timeZone);
  const ceremonyDate = wedding?.ceremonyDate;
  const requestHash = digest(JSON.stringify([req.type, components, req.weddingId ?? null]));
  const { apiKeyId, idempotencyKey } = origin;
  // Derived from the key, so a retry after a timed-out add names the same job and BullMQ keeps one.
  const operationId =
    apiKeyId && idempotencyKey ? stableUuid(`${apiKeyId}\n${idempotencyKey}\n${requestHash}`) : randomUUID();

  return transaction(ctx.db, async (client) => {
    if (apiKeyId) {
      const earlier = await findEarlier(client, apiKeyId, idempotencyKey, requestHash);
      if (earlier) {
        const op = await getOperation(client, earlier.operationId);
        return { ...earlier, priority: op?.priority ?? priority, ceremonyDate };
      }
    }
    await createOperation(client, {
      id: operationId,
      type: req.type,
      priority,
      weddingId: req.weddingId,
      components,
      requestedBy: origin.requestedBy,
      apiKeyId,
      requestHash: apiKeyId ? requestHash : undefined,
    });
    const payload: BackupPayload = {
      operationId,
      trigger: 'demand',
      type: req.type,
      components,
      weddingId: req.weddingId,
      requestedBy: origin.requestedBy,
    };
    await onRequestPath(ctx.queues, (q) =>
      q[QUEUES.backup].add(JOBS.backup, payload, { jobId: jobIds.backup(operationId), priority }),
    );
    if (apiKeyId && idempotencyKey)
      await recordIdempotencyKey(client, apiKeyId, idempotencyKey, { requestHash, operationId });
    return { operationId, priority, ceremonyDate };
  });
}

/** An operation this request repeats, under the locks that keep two such requests from both creating one. */
async function findEarlier(
  client: pg.PoolClient,
  apiKeyId: string,
  idempotencyKey: string | undefined,
  requestHash: string,
): Promise<Pick<EnqueuedBackup, 'operationId' | 'existing'> | undefined> {
  // Fixed order (key, then request) so two requests never wait on each other's second lock.
  await lockRequests(client, [
    ...(idempotencyKey ? [`key:${apiKeyId}:${idempotencyKey}`] : []),
    `request:${apiKeyId}:${requestHash}`,
  ]);
  if (idempotencyKey) {
    const rec = await findIdempotencyKey(client, apiKeyId, idempotencyKey);
    if (rec && rec.requestHash !== requestHash) {
      throw new UnprocessableError('this Idempotency-Key was used with a different request body', {
        details: { operationId: rec.operationId },
      });
    }
    if (rec) return { operationId: rec.operationId, existing: 'idempotency-key' };
  }
  const live = await findLiveRequest(client, apiKeyId, requestHash);
  if (!live) return undefined;
  if (idempotencyKey)
    await recordIdempotencyKey(client, apiKeyId, idempotencyKey, { requestHash, operationId: live });
  return { operationId: live, existing: 'identical' };
}

/**
 * The wedding's ceremony date; NotFound only when neither the source nor the catalog's recovery
 * points know the wedding. An unreachable or slow source refuses nothing: the date is a priority hint.
 */
export async function findWedding(ctx: AppContext, weddingId: string): Promise<WeddingLookup | undefined> {
  let found: WeddingLookup | undefined;
  try {
    found = await withDeadline(
      lookupWedding(ctx.config.sources.postgres, weddingId),
      REQUEST_DEADLINE_MS,
      'source',
    );
  } catch (err) {
    ctx.log.warn({ err, weddingId }, 'wedding lookup in the source failed; default priority');
    return undefined;
  }
  if (found?.found === false && !(await weddingHasPoints(ctx.db, weddingId))) {
    throw new NotFoundError(`wedding ${weddingId} is in neither the source database nor any recovery point`, {
      details: { field: 'weddingId' },
    });
  }
  return found;
}

const digest = (s: string): string => createHash('sha256').update(s).digest('hex');
