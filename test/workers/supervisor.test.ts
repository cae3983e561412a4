/** The worker watchdog: a BullMQ worker that stops consuming without being asked is replaced. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { requestBackup } from '../../src/producers/backups.js';
import { superviseWorkers, type Supervisor } from '../../src/workers/supervisor.js';
import { createTestService, waitFor, waitForOperation, type TestService } from '../helpers/service.js';

let svc: TestService;
let sup: Supervisor;

beforeAll(async () => {
  svc = await createTestService();
  sup = superviseWorkers(svc.ctx, { queues: ['backup'], concurrency: 1, checkEveryMs: 200 });
});

afterAll(async () => {
  await sup?.stop();
  await svc?.cleanup();
});

it('a worker closed behind the supervisor’s back is replaced, and the queue keeps being served', async () => {
  const [first] = sup.workers();
  await first!.close();
  const second = await waitFor(async () => sup.workers().find((w) => w !== first && w.isRunning()), 10_000);
  expect(second).toBeDefined();
  const { operationId } = await requestBackup(svc.ctx, { type: 'files' });
  await waitForOperation(svc.ctx, operationId, 60_000);
}, 90_000);
