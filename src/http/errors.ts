/** The one place where errors become HTTP responses: `{error: {code, message, details}}`. */
import type { ErrorRequestHandler, RequestHandler, Router } from 'express';
import { ZodError } from 'zod';
import { RateLimitedError, WedvaultError } from '../errors.js';

export function zodDetails(err: ZodError): { field: string; message: string }[] {
  return err.issues.map((i) => ({ field: i.path.join('.') || '(body)', message: i.message }));
}

export const notFound: RequestHandler = (req, res) => {
  res
    .status(404)
    .json({ error: { code: 'not_found', message: `no route for ${req.method} ${req.path}`, details: null } });
};

/**
 * Answers 405 with an `Allow` header on every path the router serves, for the methods it does not
 * serve (a wrong method is not a missing resource). Call it after the router's routes are declared.
 */
export function methodNotAllowed(router: Router): void {
  const allowed = new Map<string, Set<string>>();
  for (const layer of router.stack) {
    if (!layer.route) continue;
    const methods = allowed.get(layer.route.path) ?? new Set<string>();
    for (const l of layer.route.stack) methods.add(l.method.toUpperCase());
    if (methods.has('GET')) methods.add('HEAD');
    allowed.set(layer.route.path, methods);
  }
  for (const [path, methods] of allowed) {
    const allow = [...methods].sort().join(', ');
    router.all(path, (req, res, next) => {
      // Express answers OPTIONS itself, with the same Allow list.
      if (req.method === 'OPTIONS') {
        next();
        return;
      }
      res
        .status(405)
        .set('Allow', allow)
        .json({
          error: {
            code: 'method_not_allowed',
            message: `${req.method} is not allowed on ${req.baseUrl}${req.path}; allowed: ${allow}`,
            details: { allow: [...methods] },
          },
        });
    });
  }
}

export const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
  if (err instanceof ZodError) {
    const details = zodDetails(err);
    res.status(400).json({
      error: {
        code: 'invalid_request',
        message: details.map((d) => `${d.field}: ${d.message}`).join('; '),
        details,
      },
    });
    return;
  }
  if (err instanceof WedvaultError) {
    if (err instanceof RateLimitedError) res.set('Retry-After', String(err.retryAfterSeconds));
    // Unavailable dependencies are worth a retry, soon.
    else if (err.httpStatus === 503) res.set('Retry-After', '5');
    res
      .status(err.httpStatus)
      .json({ error: { code: err.code, message: err.message, details: err.details ?? null } });
    return;
  }
  // body-parser's errors: an oversized body, malformed JSON, an unsupported charset
  const bodyError = err as { status?: number; type?: string; limit?: number };
  if (bodyError.type === 'entity.too.large') {
    res.status(413).json({
      error: {
        code: 'payload_too_large',
        message: `request body too large: at most ${bodyError.limit} bytes`,
        details: [{ field: '(body)', message: 'too large' }],
      },
    });
    return;
  }
  const status = bodyError.status;
  if (status && status >= 400 && status < 500) {
    res.status(status).json({
      error: {
        code: 'invalid_request',
        message: (err as Error).message,
        details: [
          {
            field: '(body)',
            message: bodyError.type === 'entity.parse.failed' ? 'malformed JSON' : (err as Error).message,
          },
        ],
      },
    });
    return;
  }
  req.log?.error({ err }, 'unhandled error');
  res.status(500).json({ error: { code: 'internal', message: 'internal error', details: null } });
};
