/** API keys with scopes (Bearer; Basic where a browser must log in), and the audit trail of every mutating call. */
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

export interface AuthOptions {
  /** Also accept `Authorization: Basic` (any user name, the key as password) and challenge browsers with this realm. */
  basicRealm?: string;
}

/** The key a request presents: Bearer always, Basic's password only where a realm allows it. */
function presentedKey(header: string, allowBasic: boolean): string | undefined {
  const bearer = /^Bearer\s+(\S+)$/i.exec(header);
  if (bearer) return bearer[1];
  const basic = allowBasic ? /^Basic\s+([A-Za-z0-9+/]+=*)$/i.exec(header) : null;
  if (!basic) return undefined;
  const credentials = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const password = credentials.slice(credentials.indexOf(':') + 1);
  return credentials.includes(':') && password ? password : undefined;
}

export function authenticate(db: Db, opts: AuthOptions = {}): RequestHandler {
  const allowBasic = opts.basicRealm !== undefined;
  const missing = allowBasic
    ? 'missing API key: send Authorization: Bearer <key>, or Basic with the key as password'
    : 'missing API key: send Authorization: Bearer <key>';
  return (req, res, next) => {
    const refuse = (message: string): void => {
      if (allowBasic) res.set('WWW-Authenticate', `Basic realm="${opts.basicRealm}", charset="UTF-8"`);
      next(new UnauthorizedError(message));
    };
    const key = presentedKey(req.headers.authorization ?? '', allowBasic);
    if (!key) {
      refuse(missing);
      return;
    }
    findApiKey(db, key)
      .then((found) => {
        if (!found) return refuse('unknown or revoked API key');
        req.apiKey = found;
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
