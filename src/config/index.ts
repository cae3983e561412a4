/** Reads and validates configuration once at start-up; everything below receives the typed result. */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import {
  DEFAULT_CEREMONY_COLUMN,
  envSchema,
  fileConfigSchema,
  pitrSchema,
  type CeremonyColumn,
  type FileConfig,
  type FilesSourceConfig,
  type RetentionConfig,
  type TargetConfig,
  type TableName,
  type TenancyOverride,
} from './schema.js';
import { resolveScheduling, type SchedulingConfig } from './scheduling.js';

export type { SchedulingConfig, TierCadence, OffPeakWindow, SourceWindows, Weekday } from './scheduling.js';
import type { LoadConfig } from './load.js';

export type { LoadConfig, GuardConfig, LoadTier } from './load.js';
export { agingBoundsMs, LOAD_TIERS } from './load.js';
export type {
  CeremonyColumn,
  DataClass,
  KeepRule,
  Duration,
  GfsPolicy,
  RetentionConfig,
  TargetConfig,
  FilesSourceConfig,
  TableName,
  TenancyOverride,
} from './schema.js';

export interface PostgresSourceConfig {
  url: string;
  tenantKey: string;
  ceremonyDate: CeremonyColumn;
  /** Each wedding's time zone, a column of the ceremony date's table; undefined: UTC for all. */
  weddingTimeZone?: CeremonyColumn | undefined;
  /** Each wedding's region (which season applies), a column of the ceremony date's table; undefined: the default region. */
  weddingRegion?: CeremonyColumn | undefined;
  supplierKey: string | undefined;
  excludeTables: TableName[];
  /** Keep a logical replication slot per backup, so incrementals read only changed rows. */
  changeSlot: boolean;
  /** Tables whose tenancy the config decides (`sources.postgres.tenancy`). */
  tenancy: TenancyOverride[];
  /** Continuous capture for point-in-time recovery; when enabled, `changeSlot` is on too (a base point needs its slot's consistent point). */
  pitr: PitrConfig;
}

export interface PitrConfig {
  enabled: boolean;
  segmentSeconds: number;
  segmentBytes: number;
  slot: string;
}

export interface Config {
  port: number;
  host: string;
  redisUrl: string;
  redisPrefix: string;
  databaseUrl: string;
  dataDir: string;
  filesDir: string;
  /** 32 bytes; never written into a repository. */
  masterKey: Buffer;
  /** True when the key was generated locally (development only). */
  masterKeyGenerated: boolean;
  masterKeyFile: string | undefined;
  adminKey: string | undefined;
  logLevel: string;
  workerConcurrency: number;
  jobLockMs: number;
  /** Reconciler period: stranded operations, tests and replicas are resumed or failed within about two of these. */
  reconcileMs: number;
  jobAttempts: number;
  jobBackoffMs: number;
  /** Mutating API requests per key per minute; 0 turns the limit off. */
  rateLimitPerMinute: number;
  /** /metrics without a key (WEDVAULT_METRICS_PUBLIC=on). */
  metricsPublic: boolean;
  targets: TargetConfig[];
  /** Backups are written here first, then replicated to the rest. */
  primaryTarget: string;
  policy: { targets: string[]; windowMinutes: number };
  sources: { postgres: PostgresSourceConfig; files: FilesSourceConfig[] };
  /** GFS policies per source and backup type; empty: no point ever expires. */
  retention: RetentionConfig;
  /** Wedding-aware schedules: tier cadences and RPOs, seasons, peak weekdays, off-peak windows. */
  scheduling: SchedulingConfig;
  /** Source guard, aging, backpressure, event triggers (`load` in the config file). */
  load: LoadConfig;
  /** The environment this was loaded from: targets look up credentials in it by the names they configure. */
  credentialsEnv: NodeJS.ProcessEnv;
}

function formatIssues(issues: z.core.$ZodIssue[], where: string): string {
  return issues.map((i) => `${where}${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

function readFileConfig(file: string | undefined): FileConfig {
  if (!file) return fileConfigSchema.parse({});
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`WEDVAULT_CONFIG: cannot read ${file} as JSON: ${(err as Error).message}`);
  }
  const parsed = fileConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(`WEDVAULT_CONFIG (${file}): ${formatIssues(parsed.error.issues, '')}`, {
      details: parsed.error.issues,
    });
  }
  return parsed.data;
}

/** Accepts 32 bytes as 64 hex characters or base64. */
export function parseMasterKey(value: string, source: string): Buffer {
  const trimmed = value.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed)
    ? Buffer.from(trimmed, 'hex')
    : Buffer.from(trimmed, 'base64');
  if (key.length !== 32) {
    throw new ConfigError(`${source}: the master key must be 32 bytes (64 hex characters or base64)`);
  }
  return key;
}

function resolveMasterKey(
  envKey: string | undefined,
  keyFile: string,
): { key: Buffer; generated: boolean; file?: string } {
  if (envKey) return { key: parseMasterKey(envKey, 'WEDVAULT_MASTER_KEY'), generated: false };
  if (existsSync(keyFile)) {
    return { key: parseMasterKey(readFileSync(keyFile, 'utf8'), keyFile), generated: true, file: keyFile };
  }
  mkdirSync(path.dirname(keyFile), { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  writeFileSync(keyFile, key.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(keyFile, 0o600);
  return { key, generated: true, file: keyFile };
}

function defaultTargets(dataDir: string): TargetConfig[] {
  const local = (name: string, location: string): TargetConfig => ({
    name,
    type: 'local',
    path: path.join(dataDir, 'targets', name),
    prefix: '',
    labels: { media: 'disk', location, offsite: false },
    concurrency: 8,
    rateLimit: 0,
  });
  return [local('local-primary', 'local'), local('local-secondary', 'local')];
}

function sameTable(field: string, column: CeremonyColumn | undefined, ceremony: CeremonyColumn): void {
  if (
    column &&
    (column.table !== ceremony.table || (column.schema ?? 'public') !== (ceremony.schema ?? 'public'))
  ) {
    throw new ConfigError(
      `${field}: ${column.table}.${column.column} must be a column of the ceremony date's table (${ceremony.table})`,
    );
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(`invalid environment: ${formatIssues(parsed.error.issues, '')}`, {
      details: parsed.error.issues,
    });
  }
  const e = parsed.data;
  const file = readFileConfig(e.WEDVAULT_CONFIG);
  const dataDir = path.resolve(e.WEDVAULT_DATA_DIR);
  const filesDir = path.resolve(e.WEDVAULT_FILES_DIR);
  // The generated key lives outside the data directory: keys never sit beside what they protect.
  const keyFile = path.resolve(e.WEDVAULT_KEY_FILE ?? path.join(dataDir, '..', '.wedvault', 'master.key'));
  const master = resolveMasterKey(e.WEDVAULT_MASTER_KEY, keyFile);

  const targets = file.targets && file.targets.length > 0 ? file.targets : defaultTargets(dataDir);
  const names = new Set<string>();
  for (const t of targets) {
    if (names.has(t.name)) throw new ConfigError(`WEDVAULT_CONFIG: target name "${t.name}" appears twice`);
    names.add(t.name);
  }
  const policyTargets = file.policy.targets ?? targets.map((t) => t.name);
  for (const n of policyTargets) {
    if (!names.has(n)) throw new ConfigError(`WEDVAULT_CONFIG: policy.targets names unknown target "${n}"`);
  }

  const pg = file.sources.postgres ?? {};
  const files: FilesSourceConfig[] =
    file.sources.files && file.sources.files.length > 0
      ? file.sources.files
      : [{ name: 'files', path: filesDir, prefix: '', scopes: [] }];
  for (const f of files) {
    if (!f.path && !f.target)
      throw new ConfigError(`WEDVAULT_CONFIG: files source "${f.name}" needs path or target`);
    if (f.target && !names.has(f.target)) {
      throw new ConfigError(`WEDVAULT_CONFIG: files source "${f.name}" names unknown target "${f.target}"`);
    }
  }
  if (!file.sources.files?.length) mkdirSync(filesDir, { recursive: true });
  const pitrFile = pg.pitr ?? pitrSchema.parse({});
  const pitr: PitrConfig = {
    ...pitrFile,
    enabled: e.WEDVAULT_PITR ? e.WEDVAULT_PITR === 'on' : pitrFile.enabled,
  };
  const ceremonyDate = e.WEDVAULT_CEREMONY_DATE ?? pg.ceremonyDate ?? DEFAULT_CEREMONY_COLUMN;
  const weddingTimeZone = e.WEDVAULT_WEDDING_TIMEZONE ?? pg.weddingTimeZone;
  // Read in the same row as the ceremony date: one lookup per wedding, one table keyed by the wedding.
  sameTable('WEDVAULT_WEDDING_TIMEZONE', weddingTimeZone, ceremonyDate);
  sameTable('sources.postgres.weddingRegion', pg.weddingRegion, ceremonyDate);

  return {
    port: e.PORT,
    host: e.HOST,
    redisUrl: e.REDIS_URL,
    redisPrefix: e.WEDVAULT_REDIS_PREFIX,
    databaseUrl: e.DATABASE_URL,
    dataDir,
    filesDir,
    masterKey: master.key,
    masterKeyGenerated: master.generated,
    masterKeyFile: master.file,
    adminKey: e.WEDVAULT_ADMIN_KEY,
    logLevel: e.LOG_LEVEL,
    workerConcurrency: e.WEDVAULT_WORKER_CONCURRENCY,
    jobLockMs: e.WEDVAULT_JOB_LOCK_MS,
    reconcileMs: e.WEDVAULT_RECONCILE_MS,
    jobAttempts: e.WEDVAULT_JOB_ATTEMPTS,
    jobBackoffMs: e.WEDVAULT_JOB_BACKOFF_MS,
    rateLimitPerMinute: e.WEDVAULT_RATE_LIMIT_PER_MINUTE,
    metricsPublic: e.WEDVAULT_METRICS_PUBLIC === 'on',
    targets,
    primaryTarget: targets[0]!.name,
    policy: { targets: policyTargets, windowMinutes: file.policy.windowMinutes },
    sources: {
      postgres: {
        url: pg.url ?? e.SOURCE_DATABASE_URL,
        tenantKey: e.WEDVAULT_TENANT_KEY ?? pg.tenantKey ?? 'wedding_id',
        ceremonyDate,
        weddingTimeZone,
        weddingRegion: pg.weddingRegion,
        supplierKey: pg.supplierKey,
        excludeTables: pg.excludeTables ?? [],
        changeSlot:
          pitr.enabled ||
          (e.WEDVAULT_CHANGE_SLOT ? e.WEDVAULT_CHANGE_SLOT === 'on' : (pg.changeSlot ?? false)),
        tenancy: pg.tenancy ?? [],
        pitr,
      },
      files,
    },
    retention: file.retention,
    scheduling: resolveScheduling(file.scheduling),
    load: file.load,
    credentialsEnv: env,
  };
}
