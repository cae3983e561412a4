/** Redis connections and the queue objects, built from configuration in one place. */
import { FlowProducer, Queue, type ConnectionOptions, type DefaultJobOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { ALL_QUEUES, type QueueName } from './names.js';

export interface QueueContext {
  connection: Redis;
  /** '{prefix}': the hash tag keeps every key of a queue in one Redis Cluster slot. */
  prefix: string;
  queues: Record<QueueName, Queue>;
  flow: FlowProducer;
  /** Queue defaults do not apply to flow jobs: producers spread these into flow job options. */
  jobOptions: DefaultJobOptions;
  close(): Promise<void>;
}

export function createRedis(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true });
}

export const bullPrefix = (redisPrefix: string) => `{${redisPrefix}}`;

/** Transient failures retry with exponential backoff; typed fatal errors are marked unrecoverable by workers. */
export function defaultJobOptions(attempts = 5, backoffMs = 2_000): DefaultJobOptions {
  return {
    attempts,
    backoff: { type: 'exponential', delay: backoffMs },
    removeOnComplete: { age: 7 * 24 * 3600, count: 10_000 },
    removeOnFail: { age: 30 * 24 * 3600 },
  };
}

export interface RetryPolicy {
  attempts: number;
  backoffMs: number;
}

/**
 * Queues, the flow producer and their connection emit 'error' while Redis is away (refused,
 * reset). An EventEmitter's 'error' with no listener is thrown, and would end the process: every
 * one gets `onError`, and ioredis reconnects on its own.
 */
export function createQueues(
  redisUrl: string,
  redisPrefix: string,
  retry?: RetryPolicy,
  onError: (err: Error, source: string) => void = () => undefined,
): QueueContext {
  const connection = createRedis(redisUrl);
  connection.on('error', (err: Error) => onError(err, 'redis'));
  const prefix = bullPrefix(redisPrefix);
  const jobOptions = defaultJobOptions(retry?.attempts, retry?.backoffMs);
  const opts = { connection: connection as ConnectionOptions, prefix, defaultJobOptions: jobOptions };
  const queues = Object.fromEntries(ALL_QUEUES.map((name) => [name, new Queue(name, opts)])) as Record<
    QueueName,
    Queue
  >;
  const flow = new FlowProducer({ connection: connection as ConnectionOptions, prefix });
  for (const [name, q] of Object.entries(queues)) q.on('error', (err) => onError(err, `queue ${name}`));
  flow.on('error', (err) => onError(err, 'flow producer'));
  return {
    connection,
    prefix,
    queues,
    flow,
    jobOptions,
    async close() {
      await Promise.all(Object.values(queues).map((q) => q.close()));
      await flow.close();
      connection.disconnect();
    },
  };
}
