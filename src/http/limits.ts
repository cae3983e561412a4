/** Request limits: mutating calls per API key per minute (counted in Redis, shared by every API process) and request ids. */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { AppContext } from '../context.js';
import { REQUEST_DEADLINE_MS, unavailable, withDeadline } from '../deadline.js';
import { RateLimitedError } from '../errors.js';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function rateLimit(ctx: AppContext): RequestHandler {
  const perMinute = ctx.config.rateLimitPerMinute;
  if (perMinute === 0) return (_req, _res, next) => next();
  const limiter = new RateLimiterRedis({
    storeClient: ctx.queues.request.connection,
    keyPrefix: `${ctx.queues.prefix}:rate`,
    points: perMinute,
    duration: 60,
    // Refuse at once when Redis is down: the request would get 503 from its own Redis call anyway.
    rejectIfRedisNotReady: true,
  });
  return (req, res, next) => {
    if (!MUTATING.has(req.method) || !req.apiKey) {
      next();
      return;
    }
    withDeadline(limiter.consume(req.apiKey.id), REQUEST_DEADLINE_MS, 'redis').then(
      (r: RateLimiterRes) => {
        res.set('RateLimit-Remaining', String(r.remainingPoints));
        next();
      },
      (err: unknown) => {
        // The limiter rejects with its result object when the key is over its limit, with an Error when Redis fails.
        if (err instanceof RateLimiterRes) {
          const seconds = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
          const message = `more than ${perMinute} mutating requests a minute with this API key; retry in ${seconds} s`;
          next(new RateLimitedError(message, seconds, { details: { limitPerMinute: perMinute } }));
        } else next(unavailable(err, 'redis'));
      },
    );
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
