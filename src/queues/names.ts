/** Queue and job names: spelled here once, imported everywhere else. */
import { createHash } from 'node:crypto';

export const QUEUES = {
  backup: 'backup',
  replicate: 'replicate',
  verify: 'verify',
  purge: 'purge',
  restore: 'restore',
  erasure: 'erasure',
  /** The cadence planner's ticks (wedding-aware schedules): apart from backups, so a flood never delays planning. */
  plan: 'plan',
} as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];
export const ALL_QUEUES: QueueName[] = Object.values(QUEUES);

/** One job name per queue: the same spelling, so a job's queue and name never disagree. */
export const JOBS = QUEUES;

/** Deterministic job ids where duplicates must collapse. BullMQ ids may not contain ':'. */
export const jobIds = {
  backup: (operationId: string) => `backup.${operationId}`,
  scheduledBackup: (weddingId: string, windowStart: Date) =>
    `backup.wedding.${weddingId}.${windowStart.toISOString().replace(/[:.]/g, '')}`,
  replicate: (recoveryPointId: string, target: string) => `replicate.${recoveryPointId}.${target}`,
  verify: (recoveryPointId: string, mode: string) => `verify.${recoveryPointId}.${mode}`,
  validation: (testId: string) => `validation.${testId}`,
  erasure: (erasureId: string) => `erasure.${erasureId}`,
  /** Deduplication id (not a job id): one waiting scheduled backup per wedding and component. */
  weddingBackup: (weddingId: string, component: string) => `wedding.${weddingId}.${component}`,
  /** Deduplication id of the coalesced mode's one whole-source backup per component. */
  coalescedBackup: (component: string) => `cadence.${component}`,
};

/** A version-4-shaped UUID derived from `seed`: the same seed always names the same operation. */
export function stableUuid(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
