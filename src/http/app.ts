/** The Express application: health, metrics, the authenticated /api routes and Bull Board at /admin/queues (src/http/board.ts). */
import express, { type Express } from 'express';
import { pinoHttp } from 'pino-http';
import type { AppContext } from '../context.js';
import { audit, authenticate, requireScope } from './auth.js';
import { adminRouter } from './board.js';
import { errorHandler, methodNotAllowed, notFound } from './errors.js';
import { requestId } from './limits.js';
import { readiness } from './readiness.js';
import { createMetrics } from './metrics.js';
import { openApiDocument } from './openapi.js';
import { backupsRouter } from './routes/backups.js';
import { drRouter } from './routes/dr.js';
import { pitrRouter, recoveryRouter, restorePointsRouter } from './routes/recovery.js';
import { complianceRouter } from './routes/compliance.js';
import { targetsRouter } from './routes/targets.js';
import { erasureRouter } from './routes/erasure.js';
import { schedulesRouter, weddingsRouter } from './routes/schedules.js';

export function createApp(ctx: AppContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  const { registry, httpRequests } = createMetrics(ctx);

  app.use(
    pinoHttp({
      logger: ctx.log,
      genReqId: requestId,
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
  app.get('/readyz', readiness(ctx));
  const metricsAuth = ctx.config.metricsPublic ? [] : [authenticate(ctx.db), requireScope('metrics:read')];
  app.get('/metrics', ...metricsAuth, async (_req, res) => {
    const text = await registry.metrics(); // before the type: a 503 is JSON
    res.type(registry.contentType).send(text);
  });

  // the API's description holds no secret: tools read it before they hold a key
  app.get('/api/openapi.json', (_req, res) => {
    res.json(openApiDocument());
  });
  app.use('/api', audit(ctx.db), authenticate(ctx.db));
  app.use('/admin', adminRouter(ctx));
  app.use(express.json({ limit: '256kb' }));
  app.use('/api/backups/recovery', recoveryRouter(ctx));
  app.use('/api/backups', backupsRouter(ctx));
  app.use('/api/restore-points', restorePointsRouter(ctx));
  app.use('/api/pitr', pitrRouter(ctx));
  app.use('/api/dr', drRouter(ctx));
  app.use('/api/targets', targetsRouter(ctx));
  app.use('/api/compliance/erasure', erasureRouter(ctx));
  app.use('/api/compliance', complianceRouter(ctx));
  app.use('/api/schedules', schedulesRouter(ctx));
  app.use('/api/weddings', weddingsRouter(ctx));

  methodNotAllowed(app.router);
  app.use(notFound);
  app.use(errorHandler);
  return app;
}
