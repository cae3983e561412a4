/** /readyz: Redis and the catalog each answer within a deadline, or the probe says 503 and names which did not. */
import type { RequestHandler } from 'express';
import { pingCatalog } from '../catalog/db.js';
import type { AppContext } from '../context.js';
import { withDeadline } from '../deadline.js';
import { errorMessage } from '../errors.js';
import { onRequestPath } from '../queues/connection.js';

/** Well under the 2 s a probe may wait: a local Redis or PostgreSQL answers in a millisecond. */
const PROBE_DEADLINE_MS = 1_000;

export function readiness(ctx: AppContext): RequestHandler {
  return async (_req, res) => {
    const checks = await Promise.allSettled([
      // The request connection: the workers' one queues commands while Redis is away.
      onRequestPath(ctx.queues, () => ctx.queues.request.connection.ping(), PROBE_DEADLINE_MS),
      withDeadline(pingCatalog(ctx.db), PROBE_DEADLINE_MS, 'catalog'),
    ]);
    const [redis, catalog] = checks.map((c) => (c.status === 'fulfilled' ? 'ok' : errorMessage(c.reason)));
    const failing = Object.entries({ redis, catalog })
      .filter(([, v]) => v !== 'ok')
      .map(([k]) => k);
    res
      .status(failing.length ? 503 : 200)
      .json({ status: failing.length ? 'not ready' : 'ready', failing, redis, catalog });
  };
}
