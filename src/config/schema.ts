/** The shape of wedvault's configuration: environment variables and the optional config file. */
import { z } from 'zod';
import { splitQualifiedName } from './identifier.js';
import { schedulingSchema } from './scheduling.js';
import { loadSchema } from './load.js';

export const targetLabelsSchema = z.object({
  media: z.string().min(1).default('disk'),
  location: z.string().min(1).default('local'),
  offsite: z.boolean().default(false),
});

const targetName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lower-case letters, digits, "-" and "_", at most 63 characters');

const targetCommon = {
  name: targetName,
  prefix: z.string().default(''),
  labels: targetLabelsSchema.default({ media: 'disk', location: 'local', offsite: false }),
  /** Parallel requests to this target. */
  concurrency: z.number().int().positive().max(256).default(8),
  /** Requests per second to this target, 0 for no limit. */
  rateLimit: z.number().nonnegative().default(0),
  /** Megabytes per second read from and written to this target; absent or 0 for no limit. */
  mbPerSecond: z.number().nonnegative().optional(),
};

export const targetSchema = z.discriminatedUnion('type', [
  z.object({ ...targetCommon, type: z.literal('local'), path: z.string().min(1) }),
  z.object({
    ...targetCommon,
    type: z.literal('s3'),
    bucket: z.string().min(1),
    region: z.string().default('us-east-1'),
    endpoint: z.string().url().optional(),
    forcePathStyle: z.boolean().default(false),
    /** Names of the env variables holding credentials; absent means the SDK's default chain. */
    accessKeyIdEnv: z.string().optional(),
    secretAccessKeyEnv: z.string().optional(),
  }),
  z.object({
    ...targetCommon,
    type: z.literal('gcs'),
    bucket: z.string().min(1),
    projectId: z.string().optional(),
    apiEndpoint: z.string().url().optional(),
  }),
  z.object({
    ...targetCommon,
    type: z.literal('azure'),
    container: z.string().min(1),
    /** Env variable holding the connection string (default AZURE_STORAGE_CONNECTION_STRING). */
    connectionStringEnv: z.string().default('AZURE_STORAGE_CONNECTION_STRING'),
  }),
]);
export type TargetConfig = z.infer<typeof targetSchema>;

/** Maps file paths (glob) to key scopes; `{1}` in scope is the first `*` segment of the match. */
export const scopeRuleSchema = z.object({ pattern: z.string().min(1), scope: z.string().min(1) });

export const filesSourceSchema = z.object({
  name: targetName,
  /** A local directory, or a target's bucket prefix. */
  path: z.string().optional(),
  target: z.string().optional(),
  prefix: z.string().default(''),
  scopes: z.array(scopeRuleSchema).default([]),
});
export type FilesSourceConfig = z.infer<typeof filesSourceSchema>;

/** Where a wedding's ceremony date is: a column of the tenant table, its schema optional. */
export interface CeremonyColumn {
  schema?: string;
  table: string;
  column: string;
}

export const DEFAULT_CEREMONY_COLUMN: CeremonyColumn = { table: 'weddings', column: 'wedding_date' };

/** `[schema.]table.column`, quoted parts allowed; parsed here once, nothing else splits the setting. */
export const ceremonyColumnSchema = z.string().transform((value, ctx): CeremonyColumn => {
  const parts = splitQualifiedName(value);
  if (!Array.isArray(parts) || parts.length < 2 || parts.length > 3) {
    const why = Array.isArray(parts) ? '' : ` (${parts.error})`;
    ctx.addIssue({ code: 'custom', message: `expected table.column or schema.table.column${why}` });
    return z.NEVER;
  }
  const [column, table, schema] = [...parts].reverse() as [string, string, string?];
  return schema ? { schema, table, column } : { table, column };
});

/** A table the config names: `[schema.]table`; without a schema it is looked up in every schema. */
export interface TableName {
  schema?: string;
  table: string;
}

export const tableNameSchema = z.string().transform((value, ctx): TableName => {
  const parts = splitQualifiedName(value);
  if (!Array.isArray(parts) || parts.length > 2) {
    const why = Array.isArray(parts) ? '' : ` (${parts.error})`;
    ctx.addIssue({ code: 'custom', message: `expected table or schema.table${why}` });
    return z.NEVER;
  }
  const [table, schema] = [...parts].reverse() as [string, string?];
  return schema ? { schema, table } : { table };
});

/** One column's name, quoted or not (`wedding_id`, `"Wedding ID"`). */
export const columnNameSchema = z.string().transform((value, ctx): string => {
  const parts = splitQualifiedName(value);
  if (!Array.isArray(parts) || parts.length !== 1) {
    const why = Array.isArray(parts) ? '' : ` (${parts.error})`;
    ctx.addIssue({ code: 'custom', message: `expected a column name${why}` });
    return z.NEVER;
  }
  return parts[0]!;
});

/** How one table's tenancy is decided instead of by the foreign keys: a platform table, or one key to follow. */
export const tenancyRuleSchema = z.union([
  z.literal('platform'),
  z.object({ via: z.string().min(1) }).strict(),
]);
export type TenancyRule = z.infer<typeof tenancyRuleSchema>;

export interface TenancyOverride {
  /** As written in the config, for messages. */
  key: string;
  table: TableName;
  rule: TenancyRule;
}

/** `{"app.rsvp_answers": {"via": "…"}, "public.settings": "platform"}`: shape checked here, names at classification. */
export const tenancyOverridesSchema = z
  .record(z.string(), tenancyRuleSchema)
  .transform((record, ctx): TenancyOverride[] =>
    Object.entries(record).map(([key, rule]) => {
      const table = tableNameSchema.safeParse(key);
      if (!table.success)
        ctx.addIssue({ code: 'custom', path: [key], message: table.error.issues[0]!.message });
      return { key, table: table.data ?? { table: key }, rule };
    }),
  );

/** `sources.postgres.pitr`: continuous capture into change segments (WEDVAULT_PITR=on sets `enabled`). */
export const pitrSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** A segment is sealed at least this often while changes arrive. */
  segmentSeconds: z.number().min(0.2).max(3600).default(5),
  /** ...or once its transactions reach about this many bytes of decoded text. */
  segmentBytes: z
    .number()
    .int()
    .min(4096)
    .max(1 << 30)
    .default(8 << 20),
  /** The capture's logical slot (one per source); default `wedvault_pitr`. */
  slot: z
    .string()
    .regex(/^[a-z0-9_]{1,63}$/, 'lower-case letters, digits and "_", at most 63 characters')
    .default('wedvault_pitr'),
});

export const postgresSourceSchema = z.object({
  url: z.string().min(1).optional(),
  tenantKey: columnNameSchema.default('wedding_id'),
  ceremonyDate: ceremonyColumnSchema.default(DEFAULT_CEREMONY_COLUMN),
  /** `[schema.]table.column` of each wedding's IANA time zone, in the ceremony date's table; unset: UTC. */
  weddingTimeZone: ceremonyColumnSchema.optional(),
  /** `[schema.]table.column` of each wedding's region (its season), in the ceremony date's table; unset: scheduling.defaultRegion. */
  weddingRegion: ceremonyColumnSchema.optional(),
  /** Tables whose tenant column names a supplier, not a wedding. */
  supplierKey: columnNameSchema.optional(),
  excludeTables: z.array(tableNameSchema).default([]),
  /** Keep a logical replication slot per backup (wal_level = logical): incrementals read only changed rows. */
  changeSlot: z.boolean().optional(),
  /** Per-table tenancy overrides (see tenancyOverridesSchema). */
  tenancy: tenancyOverridesSchema.default([]),
  /** Continuous capture of the change stream for point-in-time recovery. */
  pitr: pitrSchema.prefault({}),
});

/** A span of calendar time, as restic writes it: `30d`, `12h`, `1y6m` (y years, m months, w weeks, d days, h hours). */
export interface Duration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

export const durationSchema = z
  .string()
  .regex(/^(\d+[ymwdh])+$/, 'expected a duration such as 30d, 12h, 2w or 1y6m')
  .transform((value): Duration => {
    const d: Duration = { years: 0, months: 0, days: 0, hours: 0 };
    for (const [, n, unit] of value.matchAll(/(\d+)([ymwdh])/g)) {
      const count = Number(n);
      if (unit === 'y') d.years += count;
      else if (unit === 'm') d.months += count;
      else if (unit === 'w') d.days += 7 * count;
      else if (unit === 'd') d.days += count;
      else d.hours += count;
    }
    return d;
  });

const keepCount = z.number().int().min(0).max(100_000).optional();

/** GFS rules for one source and backup type (restic's forget options); at least one must be set. */
export const gfsPolicySchema = z
  .strictObject({
    keepLast: keepCount,
    keepHourly: keepCount,
    keepDaily: keepCount,
    keepWeekly: keepCount,
    keepMonthly: keepCount,
    keepYearly: keepCount,
    keepWithin: durationSchema.optional(),
  })
  .refine((p) => Object.values(p).some((v) => v !== undefined), {
    message:
      'a policy needs at least one rule (keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly, keepWithin)',
  });
export type GfsPolicy = z.infer<typeof gfsPolicySchema>;

/** When a data class expires: so long after the wedding's ceremony date, or after the point's time. */
export interface KeepRule {
  /** From the wedding's ceremony date (its key destroyed then), or from the point's time (left out of restores). */
  from: 'wedding' | 'point';
  after: Duration;
  /** As written in the config, for messages and the preview. */
  text: string;
}

/** `wedding + 90d`, `wedding + 7y` or a bare duration (`30d`). */
export const keepRuleSchema = z.string().transform((value, ctx): KeepRule => {
  const m = /^\s*(?:(wedding)\s*\+\s*)?(\S+)\s*$/.exec(value);
  const after = durationSchema.safeParse(m?.[2] ?? '');
  if (!m || !after.success) {
    ctx.addIssue({
      code: 'custom',
      message: 'expected "wedding + <duration>" or "<duration>", e.g. "wedding + 90d", "30d"',
    });
    return z.NEVER;
  }
  // A point-relative rule cannot destroy a key (one key per tenant × class serves every point,
  // for dedup): every restore of a point past it leaves the class out instead.
  if (!m[1]) return { from: 'point', after: after.data, text: value.trim() };
  return { from: 'wedding', after: after.data, text: value.trim() };
});

/** A data class: its tables and file patterns, sealed under a key per tenant × class, and when it expires. */
export const dataClassSchema = z.strictObject({
  tables: z.array(tableNameSchema).default([]),
  /** Globs over file paths, as in a files source's scope rules. */
  files: z.array(z.string().min(1)).default([]),
  keep: keepRuleSchema,
});

export interface DataClass {
  name: string;
  tables: TableName[];
  files: string[];
  keep: KeepRule;
}

const sameTable = (a: TableName, b: TableName) =>
  a.table === b.table && (a.schema === undefined || b.schema === undefined || a.schema === b.schema);

/** `{ "guest-pii": {tables, files, keep}, … }` into a list; a table in two classes is refused. */
export const dataClassesSchema = z
  .record(
    z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'a class name is lower-case letters, digits, "-" and "_"'),
    dataClassSchema,
  )
  .transform((record, ctx): DataClass[] => {
    const classes = Object.entries(record).map(([name, c]) => ({ name, ...c }));
    classes.forEach((c, i) =>
      c.tables.forEach((t, j) => {
        const other = classes.slice(0, i).find((o) => o.tables.some((x) => sameTable(x, t)));
        if (other)
          ctx.addIssue({
            code: 'custom',
            path: [c.name, 'tables', j],
            message: `table ${t.schema ? `${t.schema}.` : ''}${t.table} is already in class ${other.name}`,
          });
      }),
    );
    return classes;
  });

/** Per source, per backup type; a source or type without a policy keeps every point. */
export const retentionSchema = z
  .strictObject({
    /** Data classes (README, "Retention by data class"); none: every tenant's data has one key. */
    classes: dataClassesSchema.optional(),
    database: z
      .strictObject({ full: gfsPolicySchema.optional(), incremental: gfsPolicySchema.optional() })
      .optional(),
    files: z
      .strictObject({
        full: gfsPolicySchema.optional(),
        incremental: gfsPolicySchema.optional(),
        files: gfsPolicySchema.optional(),
      })
      .optional(),
  })
  .default({});
export type RetentionConfig = z.infer<typeof retentionSchema>;

export const fileConfigSchema = z.object({
  targets: z.array(targetSchema).optional(),
  /** Names of the targets every recovery point must reach (3-2-1 policy); default all. */
  policy: z
    .object({
      targets: z.array(z.string()).optional(),
      /** Minutes a point may take to reach its policy before it is flagged. */
      windowMinutes: z.number().int().positive().default(60),
    })
    .default({ windowMinutes: 60 }),
  sources: z
    .object({
      postgres: postgresSourceSchema.partial().optional(),
      files: z.array(filesSourceSchema).optional(),
    })
    .default({}),
  /** Which recovery points a purge forgets (docs: README, "Retention"); none: nothing expires. */
  retention: retentionSchema,
  /** Wedding-aware schedules (README, "Wedding-aware schedules"): tiers, seasons, off-peak windows. */
  scheduling: schedulingSchema,
  /** Shared rate limits aside: the source guard, aging, backpressure and event triggers. */
  load: loadSchema,
});
export type FileConfig = z.infer<typeof fileConfigSchema>;

const port = z.coerce.number().int().min(0).max(65535);

export const envSchema = z.object({
  PORT: port.default(3000),
  HOST: z.string().default('127.0.0.1'),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'expected redis://host:port[/db]')
    .default('redis://127.0.0.1:6379'),
  WEDVAULT_REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9:_-]+$/)
    .default('wedvault'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'expected postgres://…')
    .default('postgres://postgres@127.0.0.1:5432/wedvault'),
  SOURCE_DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'expected postgres://…')
    .default('postgres://postgres@127.0.0.1:5432/wedvault_demo'),
  WEDVAULT_CONFIG: z.string().optional(),
  WEDVAULT_MASTER_KEY: z.string().optional(),
  WEDVAULT_ADMIN_KEY: z.string().min(16, 'at least 16 characters').optional(),
  WEDVAULT_DATA_DIR: z.string().default('./data'),
  WEDVAULT_FILES_DIR: z.string().default('./data/files'),
  WEDVAULT_TENANT_KEY: columnNameSchema.optional(),
  WEDVAULT_CEREMONY_DATE: ceremonyColumnSchema.optional(),
  WEDVAULT_WEDDING_TIMEZONE: ceremonyColumnSchema.optional(),
  WEDVAULT_KEY_FILE: z.string().optional(),
  /** on: every database backup keeps a logical replication slot for the next incremental. */
  WEDVAULT_CHANGE_SLOT: z.enum(['on', 'off']).optional(),
  /** on: continuous capture for point-in-time recovery (and change slots on every database backup). */
  WEDVAULT_PITR: z.enum(['on', 'off']).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** How long a job's lock lives without renewal: a killed worker's job is retried after about this long. */
  WEDVAULT_JOB_LOCK_MS: z.coerce.number().int().min(1000).default(30_000),
  /** Attempts per job and the first backoff delay (doubling) for transient failures. */
  WEDVAULT_JOB_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(5),
  WEDVAULT_JOB_BACKOFF_MS: z.coerce.number().int().min(10).default(2_000),
  /** How often the reconciler looks for operations, tests and replicas whose job is gone (worker role). */
  WEDVAULT_RECONCILE_MS: z.coerce.number().int().min(200).max(30_000).default(30_000),
  WEDVAULT_WORKER_CONCURRENCY: z.coerce.number().int().positive().max(64).default(2),
  /** Mutating API requests per API key per minute, shared by every API process (0: no limit). */
  WEDVAULT_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(0).default(60),
  /** on: /metrics answers without a key (only where the listening address is private). */
  WEDVAULT_METRICS_PUBLIC: z.enum(['on', 'off']).default('off'),
});
export type Env = z.infer<typeof envSchema>;
