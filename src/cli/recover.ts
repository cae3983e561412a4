/** `wedvault restore --to-time`: point-in-time recovery straight from the repositories (no service needed). */
import { z } from 'zod';
import type { Config } from '../config/index.js';
import { recoverToTarget, type RecoverResult } from '../engine/pitr/recover.js';
import { ValidationError } from '../errors.js';
import { expiredPointClasses } from '../policy/class-expiry.js';
import { checkRecoveryRequest } from '../producers/recovery.js';
import { createStorage } from '../storage/factory.js';
import { PITR_SOURCE } from '../engine/pitr/types.js';

export interface ToTimeOptions {
  toTime: string;
  wedding?: string | undefined;
  targetDatabase?: string | undefined;
  merge?: boolean | undefined;
  dryRun?: boolean | undefined;
}

const isoTime = z.iso.datetime({ offset: true });

export async function recoverToTime(
  config: Config,
  basePointId: string | undefined,
  opts: ToTimeOptions,
): Promise<RecoverResult> {
  if (!isoTime.safeParse(opts.toTime).success)
    throw new ValidationError(`--to-time needs an ISO 8601 time with a zone or Z, got "${opts.toTime}"`);
  if (!opts.targetDatabase) throw new ValidationError('restore --to-time needs --target-database <url>');
  const mode = opts.merge ? 'merge' : 'new';
  try {
    // the same rules as the REST request: a merge needs a wedding, a dry run a merge, a URL a database
    checkRecoveryRequest({
      targetTime: opts.toTime,
      weddingId: opts.wedding,
      targetDatabase: opts.targetDatabase,
      mode,
      dryRun: opts.dryRun,
    });
  } catch (err) {
    const flag = { weddingId: '--wedding', targetDatabase: '--target-database', dryRun: '--dry-run' };
    if (err instanceof ValidationError && err.message.split(':')[0]! in flag)
      throw new ValidationError(err.message.replace(/^(\w+):/, (_m, f: keyof typeof flag) => `${flag[f]}:`));
    throw err;
  }
  // the primary first, then every other target: a copy that is down hands over to the next
  const copies = [...config.targets]
    .sort((a, b) => Number(b.name === config.primaryTarget) - Number(a.name === config.primaryTarget))
    .map((t) => ({ target: t.name, storage: createStorage(t, config.credentialsEnv) }));
  const expired = expiredPointClasses(config.retention.classes ?? []);
  return recoverToTarget({
    copies,
    masterKey: config.masterKey,
    source: PITR_SOURCE,
    basePointId,
    target: { time: opts.toTime },
    wedding: opts.wedding,
    targetDatabase: opts.targetDatabase,
    mode,
    dryRun: opts.dryRun,
    expiredClasses: (t) => expired(new Date(t)),
  });
}

export function describeRecovery(r: RecoverResult): string {
  const lines = [
    `recovered from ${r.fromTarget}: base point ${r.basePoint.id} (${r.basePoint.time}), ${r.appliedTxns} transactions replayed`,
    `achieved RPO ${r.achievedRpoS} s; validation ${r.validation.ok ? 'ok' : `FAILED: ${r.validation.problems.join('; ')}`}`,
  ];
  if (r.merge) {
    const rows = Object.entries(r.merge.inserted).map(([t, n]) => `${t} ${n}`);
    lines.push(`${r.dryRun ? 'would insert' : 'inserted'}: ${rows.join(', ') || 'nothing'}`);
    for (const c of r.merge.conflicts)
      lines.push(`conflict: ${c.table} ${c.count} (${c.keys.slice(0, 5).join(', ')})`);
    for (const m of r.merge.missingReferences)
      lines.push(`missing reference: ${m.table} ${m.constraint} ${m.count}`);
  }
  return lines.join('\n');
}
