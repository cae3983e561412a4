/** The one place where errors become HTTP responses: `{error: {code, message, details}}`. */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { ZodError } from 'zod';
import { WedvaultError } from '../errors.js';

export function zodDetails(err: ZodError): { field: string; message: string }[] {
  return err.issues.map((i) => ({ field: i.path.join('.') || '(body)', message: i.message }));
}

export const notFound: RequestHandler = (req, res) => {
  res
    .status(404)
    .json({ error: { code: 'not_found', message: `no route for ${req.method} ${req.path}`, details: null } });
};

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
    res
      .status(err.httpStatus)
      .json({ error: { code: err.code, message: err.message, details: err.details ?? null } });
    return;
  }
  // body-parser's malformed JSON and oversized bodies
  const status = (err as { status?: number }).status;
  if (status && status >= 400 && status < 500) {
    res.status(status).json({
      error: {
        code: 'invalid_request',
        message: (err as Error).message,
        details: [{ field: '(body)', message: 'malformed JSON' }],
      },
    });
    return;
  }
  req.log?.error({ err }, 'unhandled error');
  res.status(500).json({ error: { code: 'internal', message: 'internal error', details: null } });
};
