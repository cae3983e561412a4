/** Request limits: mutating calls per API key per minute (counted in Redis, shared by every API process) and request ids. */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { AppContext } from '../context.js';
import { RateLimitedError } from '../errors.js';
import { onRequestPath } from '../queues/connection.js';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function rateLimit(ctx: AppContext): RequestHandler {
  const perMinute = ctx.config.rateLimitPerMinute;
  if (perMinute === 0) return (_req, _res, next) => next();
  const limiter = new RateLimiterRedis({
    storeClient: ctx.queues.request.connection,
    keyPrefix: `${ctx.queues.prefix}:rate`,
    points: perMinute,
    duration: 60,
  });
  // The limiter rejects with its result when the key is over its limit: an answer, not a failure.
  const consume = (id: string) =>
    limiter.consume(id).then(
      (r) => ({ allowed: true, r }),
      (r: unknown) => (r instanceof RateLimiterRes ? { allowed: false, r } : Promise.reject(r)),
    );
  return (req, res, next) => {
    const key = req.apiKey;
    if (!MUTATING.has(req.method) || !key) {
      next();
      return;
    }
    onRequestPath(ctx.queues, () => consume(key.id)).then(({ allowed, r }) => {
      if (allowed) {
        res.set('RateLimit-Remaining', String(r.remainingPoints));
        next();
        return;
      }
      const seconds = Math.max(1, Math.ceil(r.msBeforeNext / 1000));
      const message = `more than ${perMinute} mutating requests a minute with this API key; retry in ${seconds} s`;
      next(new RateLimitedError(message, seconds, { details: { limitPerMinute: perMinute } }));
    }, next);
  };
}

export const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * A client's X-Request-Id is kept (it ends up in audit_log) only when short and plain; otherwise a
 * new one. Either way the response carries the id the service used.
 */
export function requestId(req: IncomingMessage, res: ServerResponse): string {
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
  res.setHeader('X-Request-Id', id);
  return id;
}
