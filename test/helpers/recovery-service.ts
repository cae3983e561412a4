/** A service with a small seeded source, an admin key, the app, workers and one full database backup: the recovery tests' start. */
import type { Worker } from 'bullmq';
import type { Express } from 'express';
import pg from 'pg';
import { ensureAdminKey } from '../../src/bootstrap.js';
import { createApp } from '../../src/http/app.js';
import { requestBackup } from '../../src/producers/backups.js';
import type { QueueName } from '../../src/queues/names.js';
import { seedDatabase } from '../../src/seed/database.js';
import { startWorkers } from '../../src/workers/run.js';
import { createTestService, waitForOperation, type TestService } from './service.js';

export interface RecoveryService {
  svc: TestService;
  app: Express;
  workers: Worker[];
  admin: string;
  pointId: string;
}

export async function recoveryService(
  env: Record<string, string>,
  queues: QueueName[],
  /** SQL run on the source before the backup. */
  before?: string,
): Promise<RecoveryService> {
  const svc = await createTestService(env);
  await seedDatabase(svc.config.sources.postgres.url, { scale: 0.001 });
  if (before) {
    const c = new pg.Client({ connectionString: svc.config.sources.postgres.url });
    await c.connect();
    await c.query(before).finally(() => c.end());
  }
  await ensureAdminKey(svc.ctx);
  const app = createApp(svc.ctx);
  const workers = startWorkers(svc.ctx, { queues, concurrency: 2 });
  const { operationId } = await requestBackup(svc.ctx, { type: 'full', components: ['database'] });
  const pointId = (await waitForOperation(svc.ctx, operationId, 60_000)).recoveryPointId!;
  return { svc, app, workers, admin: svc.env.WEDVAULT_ADMIN_KEY!, pointId };
}
