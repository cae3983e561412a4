/** Starts BullMQ workers for chosen queues, maps typed errors to retry-or-fail, and shuts down gracefully. */
import { DelayedError, UnrecoverableError, Worker, type Job, type Processor } from 'bullmq';
import type { AppContext } from '../context.js';
import { errorMessage, isRetryable, WedvaultError } from '../errors.js';
import { createRedis } from '../queues/connection.js';
import { QUEUES, type QueueName } from '../queues/names.js';
import { processBackup, onBackupFailed } from './backup.js';
import { processErasure } from './erasure.js';
import { heavyVerdict } from './heavy-gate.js';
import { processPlan } from './plan.js';
import { createHolds, deferJob } from './hold.js';
import { processPurge } from './purge.js';
import { processReplicate } from './replicate.js';
import { processRestore } from './restore.js';
import { processVerify } from './verify.js';

export type JobProcessor = (job: Job, ctx: AppContext) => Promise<unknown>;

const PROCESSORS: Partial<Record<QueueName, JobProcessor>> = {
  [QUEUES.backup]: processBackup,
  [QUEUES.replicate]: processReplicate,
  [QUEUES.verify]: processVerify,
  [QUEUES.restore]: processRestore,
  [QUEUES.erasure]: processErasure,
  [QUEUES.purge]: processPurge,
  [QUEUES.plan]: processPlan,
};

export interface WorkerOptions {
  queues: QueueName[];
  concurrency: number;
  /** How long a job's lock lives without renewal; a killed worker's job is picked up after this. */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
}

/**
 * Scheduled work may first be held back, moved to delayed (not failed): heavy work outside its
 * window (heavy-gate.ts), or by the source guard or backpressure (hold.ts).
 * Typed errors that cannot heal are surfaced to BullMQ as unrecoverable: no retry.
 */
function wrap(processor: JobProcessor, ctx: AppContext): Processor {
  const holds = createHolds(ctx);
  return async (job, token) => {
    // scheduled heavy work waits for the off-peak window (or runs, saying why, to save an RPO)
    const heavy = await heavyVerdict(ctx, job);
    if (heavy && !heavy.run && heavy.retryAt && token) {
      ctx.log.info(
        { queue: job.queueName, jobId: job.id, kind: heavy.kind, reason: heavy.reason },
        'heavy work held',
      );
      await job.moveToDelayed(heavy.retryAt.getTime(), token);
      throw new DelayedError();
    }
    if (heavy?.override) {
      ctx.log.warn(
        { queue: job.queueName, jobId: job.id, kind: heavy.kind, reason: heavy.reason },
        'heavy work runs outside its window',
      );
      await job.log(heavy.reason);
    }
    // then the source guard and backpressure (windows aside, they hold back scheduled work too)
    const hold = token ? await holds(job) : undefined;
    if (hold && token) throw await deferJob(ctx, job, token, hold);
    try {
      return await processor(job, ctx);
    } catch (err) {
      if (err instanceof DelayedError) throw err;
      const log = ctx.log.child({ queue: job.queueName, jobId: job.id });
      if (err instanceof WedvaultError && !isRetryable(err)) {
        log.error({ err }, 'job failed; not retryable');
        const fatal = new UnrecoverableError(`${err.code}: ${err.message}`);
        fatal.cause = err;
        throw fatal;
      }
      log.warn({ err, attempt: job.attemptsMade + 1 }, 'job failed; will retry if attempts remain');
      throw err;
    }
  };
}

export function startWorkers(ctx: AppContext, opts: WorkerOptions): Worker[] {
  const workers: Worker[] = [];
  for (const name of opts.queues) {
    const processor = PROCESSORS[name];
    if (!processor) {
      ctx.log.warn({ queue: name }, 'no processor for this queue yet; not consuming it');
      continue;
    }
    const worker = new Worker(name, wrap(processor, ctx), {
      connection: createRedis(ctx.config.redisUrl),
      prefix: ctx.queues.prefix,
      concurrency: opts.concurrency,
      lockDuration: opts.lockDurationMs ?? 30_000,
      stalledInterval: opts.stalledIntervalMs ?? opts.lockDurationMs ?? 30_000,
      maxStalledCount: 3,
    });
    worker.on('failed', (job, err) => {
      if (!job) return;
      const final = err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
      if (name === QUEUES.backup) {
        void onBackupFailed(ctx, job, err, final).catch((e: unknown) =>
          ctx.log.error({ err: errorMessage(e) }, 'could not record backup failure'),
        );
      }
    });
    worker.on('error', (err) => ctx.log.error({ err, queue: name }, 'worker error'));
    workers.push(worker);
  }
  return workers;
}

/** Lets in-flight jobs finish; jobs not finished in time return to the queue via their lock. */
export async function stopWorkers(workers: Worker[]): Promise<void> {
  await Promise.all(workers.map((w) => w.close()));
}
