/** API keys, stored as SHA-256 hashes with their scopes; the plain key is shown once at creation. */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Db } from './db.js';

export const API_SCOPES = [
  'backups:read',
  'backups:write',
  'restore:write',
  'validation:write',
  'targets:read',
  'dr:write',
  'compliance:write',
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

export async function findApiKey(db: Db, key: string): Promise<ApiKey | undefined> {
  const { rows } = await db.query<ApiKey>(
    `UPDATE api_keys SET last_used_at = now() WHERE key_hash = $1 AND revoked_at IS NULL RETURNING id, name, scopes`,
    [hashKey(key)],
  );
  return rows[0];
}
