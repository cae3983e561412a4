/**
 * Keeps the worker role consuming. BullMQ 6's Worker rides out a Redis outage by itself (its fetch loop
 * and blocking connection retry; ioredis reconnects; proven by test/workers/faults.test.ts), so this
 * is a watchdog for the case that must not be silent: a worker whose loop ended although nobody closed
 * it is logged and replaced by a new one on the same queue.
 */
import type { Worker } from 'bullmq';
import type { AppContext } from '../context.js';
import { errorMessage } from '../errors.js';
import type { QueueName } from '../queues/names.js';
import { startWorkers, stopWorkers, type WorkerOptions } from './run.js';

export interface Supervisor {
  workers(): Worker[];
  /** Closes every worker gracefully (in-flight jobs finish). */
  stop(): Promise<void>;
}

export function superviseWorkers(
  ctx: AppContext,
  opts: WorkerOptions & { checkEveryMs?: number },
): Supervisor {
  const current = new Map<QueueName, Worker>();
  let stopping = false;

  function start(queue: QueueName): void {
    const [worker] = startWorkers(ctx, { ...opts, queues: [queue] });
    if (!worker) return;
    current.set(queue, worker);
    worker.on('closed', () => {
      if (!stopping && current.get(queue) === worker) replace(queue, 'closed although nobody closed it');
    });
    worker.on('lockRenewalFailed', (jobIds: string[]) =>
      ctx.log.warn({ queue, jobIds }, 'job lock not renewed (its key may be gone); the job carries on'),
    );
  }

  function replace(queue: QueueName, why: string): void {
    const old = current.get(queue);
    current.delete(queue);
    ctx.log.error({ queue, why }, 'BullMQ worker stopped consuming; starting a new one');
    old
      ?.close(true)
      .catch((err: unknown) => ctx.log.warn({ queue, err: errorMessage(err) }, 'old worker close'));
    start(queue);
  }

  for (const q of opts.queues) start(q);
  const timer = setInterval(() => {
    for (const [queue, worker] of current)
      if (!stopping && !worker.isRunning()) replace(queue, 'its loop ended');
  }, opts.checkEveryMs ?? 5_000);
  timer.unref();

  return {
    workers: () => [...current.values()],
    async stop() {
      stopping = true;
      clearInterval(timer);
      await stopWorkers([...current.values()]);
    },
  };
}
