/** Bearer API keys with scopes, and the audit trail of every mutating call. */
import type { RequestHandler } from 'express';
import { findApiKey, type ApiKey, type ApiScope } from '../catalog/api-keys.js';
import { writeAudit } from '../catalog/audit.js';
import type { Db } from '../catalog/db.js';
import { ForbiddenError, UnauthorizedError } from '../errors.js';

declare module 'express-serve-static-core' {
  interface Request {
    apiKey?: ApiKey;
  }
}

export function authenticate(db: Db): RequestHandler {
  return (req, _res, next) => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) {
      next(new UnauthorizedError('missing API key: send Authorization: Bearer <key>'));
      return;
    }
    findApiKey(db, match[1]!)
      .then((key) => {
        if (!key) throw new UnauthorizedError('unknown or revoked API key');
        req.apiKey = key;
        next();
      })
      .catch(next);
  };
}

export function requireScope(scope: ApiScope): RequestHandler {
  return (req, _res, next) => {
    const scopes = req.apiKey?.scopes ?? [];
    if (scopes.includes(scope) || scopes.includes('admin')) next();
    else
      next(new ForbiddenError(`this API key lacks the "${scope}" scope`, { details: { required: scope } }));
  };
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Writes an audit row when a mutating request finishes, whatever its outcome (401s included). */
export function audit(db: Db): RequestHandler {
  return (req, res, next) => {
    if (!MUTATING.has(req.method)) {
      next();
      return;
    }
    res.on('finish', () => {
      writeAudit(db, {
        apiKeyId: req.apiKey?.id,
        actor: req.apiKey?.name,
        method: req.method,
        path: req.originalUrl.split('?')[0]!,
        status: res.statusCode,
        requestId: String(req.id ?? ''),
        ip: req.ip,
        resource: res.locals.auditResource as string | undefined,
      }).catch((err: unknown) => req.log?.error({ err }, 'audit write failed'));
    });
    next();
  };
}
