/** Restores from the first copy that works: a target that is down or returns a corrupt object hands over to the next. */
import { ConflictError, NotInPointError, ValidationError, errorMessage } from '../errors.js';
import type { Storage } from '../storage/types.js';
import { Repository } from './repo/repository.js';
import { restoreSnapshot, type RestoreOptions, type RestoreResult } from './restore.js';

export interface Copy {
  target: string;
  storage: Storage;
}

export interface FailoverResult extends RestoreResult {
  /** The copy the restore finally came from. */
  target: string;
  /** Copies tried before it, and why they failed. */
  failures: { target: string; error: string }[];
}

export async function restoreFromCopies(
  copies: Copy[],
  masterKey: Buffer,
  recoveryPointId: string,
  opts: RestoreOptions,
): Promise<FailoverResult> {
  const failures: { target: string; error: string }[] = [];
  let lastError: unknown = new Error('no copies to restore from');
  for (const copy of copies) {
    try {
      const repo = await Repository.open(copy.storage, masterKey);
      // Never widens `overwrite`: a live database is only replaced when the caller said so.
      const result = await restoreSnapshot(repo, recoveryPointId, opts);
      return { ...result, target: copy.target, failures };
    } catch (err) {
      // A refusal or a bad request is the same from every copy: do not try the next.
      if (err instanceof ConflictError || err instanceof ValidationError || err instanceof NotInPointError)
        throw err;
      lastError = err;
      failures.push({ target: copy.target, error: errorMessage(err) });
    }
  }
  throw everyCopyFailed(lastError, failures);
}

/**
 * One message with each copy's own cause: the last copy's alone hides why the first ones failed.
 * The last error keeps its class, so its code and whether a retry can help stay what they were.
 */
function everyCopyFailed(last: unknown, failures: { target: string; error: string }[]): unknown {
  if (failures.length === 0 || !(last instanceof Error)) return last;
  // a store's own errors often start with its name already
  const causes = failures.map((f) =>
    f.error.startsWith(`${f.target}: `) ? f.error : `${f.target}: ${f.error}`,
  );
  last.message = `every copy failed: ${causes.join('; ')}`;
  return last;
}
