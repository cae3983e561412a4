/** Validates a finished recovery again, on demand: its database checked against the point it came from. */
import { errorMessage, NotFoundError } from '../errors.js';
import type { Storage } from '../storage/types.js';
import { checkRecovered, type RecoveryChecks } from './postgres/recovery-checks.js';
import { Repository } from './repo/repository.js';
import { snapshotTree } from './tree.js';

export async function validateRecovery(
  copies: { target: string; storage: Storage }[],
  masterKey: Buffer,
  pointId: string,
  url: string,
  wedding?: string,
): Promise<RecoveryChecks & { fromTarget: string }> {
  const failures: string[] = [];
  for (const c of copies) {
    try {
      const repo = await Repository.open(c.storage, masterKey);
      const tree = snapshotTree((await repo.loadSnapshot(pointId)).tree).postgres;
      if (!tree) throw new NotFoundError(`point ${pointId} holds no database`);
      return { ...(await checkRecovered(url, tree, { wedding })), fromTarget: c.target };
    } catch (err) {
      failures.push(`${c.target}: ${errorMessage(err)}`);
    }
  }
  throw new NotFoundError(`cannot validate against ${pointId}: ${failures.join('; ') || 'no copies'}`);
}
