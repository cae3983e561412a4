/** `wedvault forget`: every recovery point with keep or forget and why; without --dry-run, forgets. */
import type { Config } from '../config/index.js';
import { createPool, ensureDatabase } from '../catalog/db.js';
import { migrate } from '../catalog/migrate.js';
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

export async function forgetCommand(config: Config, opts: ForgetOptions): Promise<void> {
  await ensureDatabase(config.databaseUrl);
  const db = createPool(config.databaseUrl, 2);
  const storages = new Map<string, Storage>(
    config.targets.map((t) => [t.name, createStorage(t, config.credentialsEnv)]),
  );
  try {
    await migrate(db);
    const result = await runForget(
      { config, db, storage: (name) => storages.get(name)! },
      { dryRun: opts.dryRun },
    );
    console.log(
      opts.json
        ? JSON.stringify({ dryRun: opts.dryRun, ...result }, null, 2)
        : formatForget(result, opts.dryRun),
    );
  } finally {
    await db.end();
  }
}
