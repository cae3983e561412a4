/** Job payload schemas; producers build them, workers parse them. */
import { z } from 'zod';
import { triggerSchema } from './load.js';

export const idSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, "_" and "-", at most 64 characters');

export const backupTypeSchema = z.enum(['full', 'incremental', 'files']);
export const componentSchema = z.enum(['database', 'files']);

export const backupPayload = z.object({
  /** Absent on scheduled runs: the worker derives one from the job id. */
  operationId: z.uuid().optional(),
  scheduleId: z.string().optional(),
  /** `demand` runs at once; scheduled and event-triggered work may be held back (src/workers/hold.ts). */
  trigger: triggerSchema.optional(),
  /** Who asked (an API key's name): the worker records it if it creates the operation's row itself. */
  requestedBy: z.string().optional(),
  type: backupTypeSchema,
  components: z.array(componentSchema).default([]),
  weddingId: idSchema.optional(),
});
export type BackupPayload = z.infer<typeof backupPayload>;

export const replicatePayload = z.object({
  recoveryPointId: idSchema,
  operationId: z.uuid().optional(),
  source: z.string(),
  target: z.string(),
});
export type ReplicatePayload = z.infer<typeof replicatePayload>;

export const verifyPayload = z.object({
  /** Absent on scheduled runs: the newest recovery point. */
  recoveryPointId: idSchema.optional(),
  scheduleId: z.string().optional(),
  trigger: triggerSchema.optional(),
  operationId: z.uuid().optional(),
  testId: z.uuid().optional(),
  mode: z.enum(['quick', 'full', 'drill']).default('quick'),
  /** Fraction of packs read back in full mode, for very large points. */
  sample: z.number().gt(0).max(1).optional(),
  targets: z.array(z.string()).optional(),
});
export type VerifyPayload = z.infer<typeof verifyPayload>;

export const erasurePayload = z.object({ erasureId: z.uuid() });
export type ErasurePayload = z.infer<typeof erasurePayload>;

export const purgePayload = z.object({ reason: z.string().default('retention') });
export type PurgePayload = z.infer<typeof purgePayload>;

export const restorePayload = z.object({
  recoveryId: z.uuid(),
  /** A point-in-time recovery may leave the base point to the engine; a plain restore names it. */
  recoveryPointId: idSchema.optional(),
  targetDatabase: z.string().optional(),
  targetDir: z.string().optional(),
  weddingId: idSchema.optional(),
  /** Point in time (a restore point already resolved to its LSN): replay change segments up to it. */
  target: z
    .object({ time: z.string().optional(), lsn: z.string().optional(), inclusive: z.boolean().optional() })
    .optional(),
  mode: z.enum(['new', 'merge']).default('new'),
  dryRun: z.boolean().optional(),
  components: z.array(componentSchema).optional(),
  /** Read only from these targets (a disaster-recovery plan's copies), in this order. */
  targets: z.array(z.string()).optional(),
  /** A disaster-recovery drill: its row is finished with the measured RTO/RPO, the scratch database dropped. */
  drillId: z.uuid().optional(),
  /** Whole database: the platform tables and the next 30 days' weddings first, reported usable, then the rest. */
  staged: z.boolean().optional(),
});
export type RestorePayload = z.infer<typeof restorePayload>;

/** A scheduled disaster-recovery drill (queue `restore`): the scenario's plan run into a scratch database. */
export const drillPayload = z.object({ drill: z.string() });

/** A cadence planner tick (queue `plan`): enqueue every wedding's due backups. */
export const planPayload = z.object({ scheduleId: z.string().optional() });
export type PlanPayload = z.infer<typeof planPayload>;
