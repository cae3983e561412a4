/** Where the capture worker keeps its state in Redis (holder, newest segment, alerts), read by the API and the SLA monitor. */
import type { Redis } from 'ioredis';
import { PITR_SOURCE } from '../engine/pitr/types.js';

export const captureStatusKey = (prefix: string, source = PITR_SOURCE): string =>
  `${prefix}:pitr:${source}:status`;

/** When the newest change segment was sealed (it covers every wedding); undefined before the first. */
export async function newestSegmentAt(redis: Redis, prefix: string): Promise<Date | undefined> {
  const at = await redis.hget(captureStatusKey(prefix), 'segmentAt');
  return at ? new Date(at) : undefined;
}
