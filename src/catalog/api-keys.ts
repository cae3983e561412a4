/** API keys, stored as SHA-256 hashes with their scopes; the plain key is shown once at creation. */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Db } from './db.js';

export const API_SCOPES = [
  'backups:read',
  'backups:write',
  'restore:write',
  /** Point-in-time recoveries (POST /api/backups/recovery) and named restore points. */
  'recovery:write',
  'validation:write',
  'targets:read',
  'dr:write',
  'compliance:write',
  /** Erase one couple or supplier from every copy (POST /api/compliance/erasure) and read the result. */
  'erasures:write',
  /** Place and release legal holds. */
  'holds:write',
  /** Change schedules (PUT /api/schedules/:id): patterns, zones, enabled, the planner's tier cadences. */
  'schedules:write',
  /** Scrape /metrics (unless WEDVAULT_METRICS_PUBLIC=on). */
  'metrics:read',
  'admin',
] as const;
export type ApiScope = (typeof API_SCOPES)[number];

export interface ApiKey {
  id: string;
  name: string;
  scopes: string[];
}

export const hashKey = (key: string): Buffer => createHash('sha256').update(key, 'utf8').digest();

export function generateKey(): string {
  return `wv_${randomBytes(24).toString('base64url')}`;
}

/** Creates (or replaces the secret of) a named key; returns the plain key. */
export async function upsertApiKey(
  db: Db,
  name: string,
  scopes: readonly string[],
  key = generateKey(),
): Promise<string> {
  await db.query(
    `INSERT INTO api_keys (id, name, key_hash, scopes) VALUES ($1, $2, $3, $4)
     ON CONFLICT (name) DO UPDATE SET key_hash = EXCLUDED.key_hash, scopes = EXCLUDED.scopes, revoked_at = NULL`,
    [randomUUID(), name, hashKey(key), scopes],
  );
  return key;
}

/**
 * Looks a key up. Its `last_used_at` is written at most once a minute: a page of the board makes a
 * dozen requests, and a write per request would churn the row for no extra information. The
 * condition is re-checked on the row itself, so concurrent requests do not both write.
 */
export async function findApiKey(db: Db, key: string): Promise<ApiKey | undefined> {
  const { rows } = await db.query<ApiKey>(
    `WITH k AS (SELECT id, name, scopes FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL),
     touched AS (
       UPDATE api_keys SET last_used_at = now() FROM k
       WHERE api_keys.id = k.id
         AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at <= now() - interval '1 minute'))
     SELECT id, name, scopes FROM k`,
    [hashKey(key)],
  );
  return rows[0];
}
