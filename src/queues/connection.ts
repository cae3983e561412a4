/** Redis connections and the queue objects, built from configuration in one place. */
import {
  FlowProducer,
  Queue,
  type ConnectionOptions,
  type DefaultJobOptions,
  type QueueOptions,
} from 'bullmq';
import { Redis } from 'ioredis';
import { ALL_QUEUES, type QueueName } from './names.js';

export interface QueueContext {
  connection: Redis;
  /** '{prefix}': the hash tag keeps every key of a queue in one Redis Cluster slot. */
  prefix: string;
  queues: Record<QueueName, Queue>;
  /**
   * The same queues on a connection that fails fast (no offline queue, one retry), for request
   * paths: the workers' connection waits for Redis forever, which a client must not.
   */
  request: { connection: Redis; queues: Record<QueueName, Queue> };
  flow: FlowProducer;
  /** Queue defaults do not apply to flow jobs: producers spread these into flow job options. */
  jobOptions: DefaultJobOptions;
  close(): Promise<void>;
}

export function createRedis(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true });
}

/** BullMQ's advice for producers behind an API ("failing fast when Redis is down"). */
export function createRequestRedis(url: string): Redis {
  return new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2_000 });
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

export function createQueues(redisUrl: string, redisPrefix: string, retry?: RetryPolicy): QueueContext {
  const connection = createRedis(redisUrl);
  const prefix = bullPrefix(redisPrefix);
  const jobOptions = defaultJobOptions(retry?.attempts, retry?.backoffMs);
  const opts = { connection: connection as ConnectionOptions, prefix, defaultJobOptions: jobOptions };
  const queues = queuesOn(opts);
  const requestConnection = createRequestRedis(redisUrl);
  // Without a listener, each failed reconnection would be logged by ioredis as unhandled.
  requestConnection.on('error', () => undefined);
  const requestQueues = queuesOn({ ...opts, connection: requestConnection as ConnectionOptions });
  const flow = new FlowProducer({ connection: connection as ConnectionOptions, prefix });
  return {
    connection,
    prefix,
    queues,
    request: { connection: requestConnection, queues: requestQueues },
    flow,
    jobOptions,
    async close() {
      await Promise.all([...Object.values(queues), ...Object.values(requestQueues)].map((q) => q.close()));
      await flow.close();
      connection.disconnect();
      requestConnection.disconnect();
    },
  };
}

function queuesOn(opts: QueueOptions): Record<QueueName, Queue> {
  return Object.fromEntries(ALL_QUEUES.map((name) => [name, new Queue(name, opts)])) as Record<
    QueueName,
    Queue
  >;
}
