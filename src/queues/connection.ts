/** Redis connections and the queue objects, built from configuration in one place. */
import {
  FlowProducer,
  Queue,
  type ConnectionOptions,
  type DefaultJobOptions,
  type QueueOptions,
} from 'bullmq';
import { Redis } from 'ioredis';
import { REQUEST_DEADLINE_MS, dependency, withDeadline } from '../deadline.js';
import { ServiceUnavailableError } from '../errors.js';
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

/**
 * Runs a request path's Redis call on the fail-fast queues, within the deadline. The call is sent
 * only once the connection is ready (a queue's first command would otherwise wait for Redis and
 * run after its request had been answered 503), and never after the deadline has passed.
 */
export async function onRequestPath<T>(
  queues: QueueContext,
  call: (q: Record<QueueName, Queue>) => Promise<T>,
  ms = REQUEST_DEADLINE_MS,
): Promise<T> {
  let abandoned = false;
  const run = async () => {
    await connectionReady(queues.request.connection, ms);
    if (abandoned)
      throw new ServiceUnavailableError('redis: the request gave up', { details: { dependency: 'redis' } });
    return call(queues.request.queues);
  };
  try {
    return await dependency(run(), 'redis', ms);
  } finally {
    abandoned = true;
  }
}

/** One listener per connection however many requests wait (each waits under its own deadline). */
const nextReady = new WeakMap<Redis, Promise<void>>();

function connectionReady(connection: Redis, ms: number): Promise<void> {
  if (connection.status === 'ready') return Promise.resolve();
  let ready = nextReady.get(connection);
  if (!ready) {
    ready = new Promise((resolve) =>
      connection.once('ready', () => {
        nextReady.delete(connection);
        resolve();
      }),
    );
    nextReady.set(connection, ready);
  }
  return withDeadline(ready, ms, 'redis');
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
  const queues = queuesOn(opts);
  const requestConnection = createRequestRedis(redisUrl);
  const requestQueues = queuesOn({ ...opts, connection: requestConnection as ConnectionOptions });
  // Each failure reaches its caller as a rejection (a 503) and /readyz names the outage; without
  // listeners, ioredis and BullMQ would also print every failed reconnection to stderr.
  requestConnection.on('error', () => undefined);
  for (const q of Object.values(requestQueues)) q.on('error', () => undefined);
  const flow = new FlowProducer({ connection: connection as ConnectionOptions, prefix });
  for (const [name, q] of Object.entries(queues)) q.on('error', (err) => onError(err, `queue ${name}`));
  flow.on('error', (err) => onError(err, 'flow producer'));
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
