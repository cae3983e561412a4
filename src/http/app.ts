/** The Express application: health, metrics, the authenticated /api routes and Bull Board at /admin/queues (src/http/board.ts). */
import { randomUUID } from 'node:crypto';
import express, { type Express } from 'express';
import { pinoHttp } from 'pino-http';
import type { AppContext } from '../context.js';
import { audit, authenticate } from './auth.js';
import { adminRouter } from './board.js';
import { errorHandler, notFound } from './errors.js';
import { createMetrics } from './metrics.js';
import { openApiDocument } from './openapi.js';
import { backupsRouter } from './routes/backups.js';
import { targetsRouter } from './routes/targets.js';

export function createApp(ctx: AppContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  const { registry, httpRequests } = createMetrics(ctx);

  app.use(
    pinoHttp({
      logger: ctx.log,
      genReqId: (req) => (req.headers['x-request-id'] as string | undefined) ?? randomUUID(),
      autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/metrics' },
    }),
  );
  app.use((req, res, next) => {
    res.on('finish', () =>
      httpRequests.inc({
        method: req.method,
        route: req.route?.path ?? req.baseUrl ?? 'unmatched',
        status: res.statusCode,
      }),
    );
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const checks = await Promise.allSettled([ctx.queues.connection.ping(), ctx.db.query('SELECT 1')]);
    const [redis, catalog] = checks.map((c) => (c.status === 'fulfilled' ? 'ok' : String(c.reason)));
    const ready = redis === 'ok' && catalog === 'ok';
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', redis, catalog });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });

  // the API's description holds no secret: tools read it before they hold a key
  app.get('/api/openapi.json', (_req, res) => {
    res.json(openApiDocument());
  });
  app.use('/api', audit(ctx.db), authenticate(ctx.db));
  app.use('/admin', adminRouter(ctx));
  app.use(express.json({ limit: '256kb' }));
  app.use('/api/backups', backupsRouter(ctx));
  app.use('/api/targets', targetsRouter(ctx));

  app.use(notFound);
  app.use(errorHandler);
  return app;
}
