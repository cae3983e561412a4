/** Repeated API requests: identical requests collapse onto a live operation; Idempotency-Keys map to one operation. */
import type pg from 'pg';
import type { Queryable } from './db.js';

/**
 * Serialises requests that could collapse onto each other, until the transaction ends: without it,
 * two identical requests arriving together would both see no live operation and both create one.
 * Locks are taken in the order given; callers pass them in one fixed order.
 */
export async function lockRequests(client: pg.PoolClient, names: string[]): Promise<void> {
  for (const name of names) {
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`wedvault-request:${name}`]);
  }
}

/** The newest operation of this key with this request digest that is still queued or running. */
export async function findLiveRequest(
  db: Queryable,
  apiKeyId: string,
  requestHash: string,
): Promise<string | undefined> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM backup_operations
      WHERE api_key_id = $1 AND request_hash = $2 AND state IN ('queued', 'running')
      ORDER BY created_at DESC LIMIT 1`,
    [apiKeyId, requestHash],
  );
  return rows[0]?.id;
}

export interface IdempotencyRecord {
  requestHash: string;
  operationId: string;
}

export async function findIdempotencyKey(
  db: Queryable,
  apiKeyId: string,
  key: string,
): Promise<IdempotencyRecord | undefined> {
  const { rows } = await db.query<{ request_hash: string; operation_id: string }>(
    'SELECT request_hash, operation_id FROM idempotency_keys WHERE api_key_id = $1 AND key = $2',
    [apiKeyId, key],
  );
  const r = rows[0];
  return r && { requestHash: r.request_hash, operationId: r.operation_id };
}

export async function recordIdempotencyKey(
  db: Queryable,
  apiKeyId: string,
  key: string,
  rec: IdempotencyRecord,
): Promise<void> {
  await db.query(
    'INSERT INTO idempotency_keys (api_key_id, key, request_hash, operation_id) VALUES ($1, $2, $3, $4)',
    [apiKeyId, key, rec.requestHash, rec.operationId],
  );
}
