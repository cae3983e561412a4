/** The audit log: one row per mutating API call, whoever made it and however it ended. */
import type { Db } from './db.js';

export interface AuditEntry {
  apiKeyId?: string | undefined;
  actor?: string | undefined;
  method: string;
  path: string;
  status: number;
  requestId?: string | undefined;
  ip?: string | undefined;
  resource?: string | undefined;
  details?: Record<string, unknown>;
}

export async function writeAudit(db: Db, e: AuditEntry): Promise<void> {
  await db.query(
    `INSERT INTO audit_log (api_key_id, actor, method, path, status, request_id, ip, resource, details)
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)`,
    [
      e.apiKeyId ?? null,
      e.actor ?? null,
      e.method,
      e.path,
      e.status,
      e.requestId ?? null,
      e.ip ?? null,
      e.resource ?? null,
      JSON.stringify(e.details ?? {}),
    ],
  );
}
