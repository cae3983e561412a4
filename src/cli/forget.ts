/** `wedvault forget`: every recovery point with keep or forget and why; without --dry-run, forgets. */
import type { Config } from '../config/index.js';
import { createPool, ensureDatabase } from '../catalog/db.js';
import { migrate } from '../catalog/migrate.js';
import { runClassExpiries, type ClassExpiryRun } from '../producers/class-expiry.js';
import { runForget, type ForgetResult } from '../producers/retention.js';
import { createStorage } from '../storage/factory.js';
import type { Storage } from '../storage/types.js';

export interface ForgetOptions {
  dryRun: boolean;
  json: boolean;
}

export function formatForget(result: ForgetResult, dryRun: boolean): string {
  const lines = result.verdicts.map(
    (v) => `${v.action.padEnd(6)}  ${v.id}  ${v.time.toISOString()}  ${v.reasons.join('; ')}`,
  );
  const going = result.verdicts.filter((v) => v.action === 'forget').length;
  lines.push(
    dryRun
      ? `${result.verdicts.length - going} kept, ${going} would be forgotten (dry run: nothing removed)`
      : `${result.verdicts.length - going} kept, ${result.forgotten.length} forgotten, ` +
          `snapshots removed on every target for ${result.snapshotsRemoved.length}`,
  );
  return lines.join('\n');
}

/** The data classes' expiries: what expires (or expired) now, what a hold blocks, what is next. */
export function formatClassExpiries(run: ClassExpiryRun, dryRun: boolean): string[] {
  const shown = run.verdicts.filter((v) => v.action === 'expire' || v.action === 'held');
  if (shown.length === 0) return [];
  const verb = dryRun ? 'would expire' : 'expired';
  return [
    'data classes:',
    ...shown.map(
      (v) =>
        `${(v.action === 'held' ? 'held' : 'expire').padEnd(6)}  ${v.scope}  ${v.rule} passed ${v.expiresAt.toISOString().slice(0, 10)}` +
        (v.hold
          ? `  (hold ${v.hold.id}: ${v.hold.reason})`
          : `  (${verb}: its key destroyed on every target)`),
    ),
  ];
}

export async function forgetCommand(config: Config, opts: ForgetOptions): Promise<void> {
  await ensureDatabase(config.databaseUrl);
  const db = createPool(config.databaseUrl, 2);
  const storages = new Map<string, Storage>(
    config.targets.map((t) => [t.name, createStorage(t, config.credentialsEnv)]),
  );
  try {
    await migrate(db);
    const ctx = { config, db, storage: (name: string) => storages.get(name)! };
    const result = await runForget(ctx, { dryRun: opts.dryRun });
    const classes = await runClassExpiries(ctx, { dryRun: opts.dryRun });
    console.log(
      opts.json
        ? JSON.stringify({ dryRun: opts.dryRun, ...result, classes }, null, 2)
        : [formatForget(result, opts.dryRun), ...formatClassExpiries(classes, opts.dryRun)].join('\n'),
    );
  } finally {
    await db.end();
  }
}
