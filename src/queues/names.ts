/** Queue and job names: spelled here once, imported everywhere else. */
export const QUEUES = {
  backup: 'backup',
  replicate: 'replicate',
  verify: 'verify',
  purge: 'purge',
  restore: 'restore',
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
};
