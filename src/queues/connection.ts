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
  close(): Promise<void>;
}

export function createRedis(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true });
}

export const bullPrefix = (redisPrefix: string) => `{${redisPrefix}}`;

/** Transient failures retry with exponential backoff; typed fatal errors are marked unrecoverable by workers. */
export const DEFAULT_JOB_OPTIONS: DefaultJobOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 2_000 },
  removeOnComplete: { age: 7 * 24 * 3600, count: 10_000 },
  removeOnFail: { age: 30 * 24 * 3600 },
};

export function createQueues(redisUrl: string, redisPrefix: string): QueueContext {
  const connection = createRedis(redisUrl);
  const prefix = bullPrefix(redisPrefix);
  const opts = {
    connection: connection as ConnectionOptions,
    prefix,
    defaultJobOptions: DEFAULT_JOB_OPTIONS,
  };
  const queues = Object.fromEntries(ALL_QUEUES.map((name) => [name, new Queue(name, opts)])) as Record<
    QueueName,
    Queue
  >;
  const flow = new FlowProducer({ connection: connection as ConnectionOptions, prefix });
  return {
    connection,
    prefix,
    queues,
    flow,
    async close() {
      await Promise.all(Object.values(queues).map((q) => q.close()));
      await flow.close();
      connection.disconnect();
    },
  };
}
