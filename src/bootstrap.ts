/** Start-up chores shared by every entry point: loud key warnings and the bootstrap admin key. */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { API_SCOPES, generateKey, upsertApiKey } from './catalog/api-keys.js';
import type { AppContext } from './context.js';

export function warnAboutKeys(ctx: AppContext): void {
  if (ctx.config.masterKeyGenerated) {
    ctx.log.warn(
      { keyFile: ctx.config.masterKeyFile },
      '!!! WEDVAULT_MASTER_KEY is not set: using a generated local master key file. Production needs a real key ' +
        'from a secret store; losing this file makes every backup unreadable. !!!',
    );
  }
}

/** Ensures an API key with every scope exists: WEDVAULT_ADMIN_KEY, or a generated one saved 0600 beside the master key. */
export async function ensureAdminKey(ctx: AppContext): Promise<void> {
  if (ctx.config.adminKey) {
    await upsertApiKey(ctx.db, 'admin', API_SCOPES, ctx.config.adminKey);
    return;
  }
  const file = path.join(
    path.dirname(ctx.config.masterKeyFile ?? path.join(ctx.config.dataDir, '..', '.wedvault', 'x')),
    'admin.key',
  );
  let key: string;
  if (existsSync(file)) key = readFileSync(file, 'utf8').trim();
  else {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    key = generateKey();
    writeFileSync(file, key + '\n', { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  await upsertApiKey(ctx.db, 'admin', API_SCOPES, key);
  ctx.log.warn({ keyFile: file }, 'WEDVAULT_ADMIN_KEY is not set: an admin API key was written to this file');
}
