/** Quick verification of one recovery point on one store: objects present with the right sizes, snapshot MAC holds. */
import { CorruptionError, NotFoundError, WrongKeyError, errorMessage } from '../errors.js';
import type { Storage } from '../storage/types.js';
import { Repository } from './repo/repository.js';

export type ProblemKind = 'missing' | 'size' | 'corrupt' | 'wrong_key' | 'unreachable';

export interface Problem {
  object: string;
  kind: ProblemKind;
  detail?: string;
  target?: string;
}

export async function quickVerify(
  storage: Storage,
  masterKey: Buffer,
  snapshotId: string,
  objects: { key: string; size: number }[],
): Promise<Problem[]> {
  const problems: Problem[] = [];
  const present = new Map<string, number>();
  try {
    const prefixes = new Set(objects.map((o) => (o.key.includes('/') ? o.key.split('/')[0] + '/' : o.key)));
    for (const p of prefixes) for await (const o of storage.list(p)) present.set(o.key, o.size);
  } catch (err) {
    return [{ object: '(listing)', kind: 'unreachable', detail: errorMessage(err) }];
  }
  for (const o of objects) {
    const size = present.get(o.key);
    if (size === undefined) problems.push({ object: o.key, kind: 'missing' });
    else if (size !== o.size)
      problems.push({ object: o.key, kind: 'size', detail: `${size} bytes, expected ${o.size}` });
  }
  if (problems.length > 0) return problems;
  try {
    const repo = await Repository.open(storage, masterKey);
    await repo.loadSnapshot(snapshotId);
  } catch (err) {
    const kind: ProblemKind =
      err instanceof WrongKeyError ? 'wrong_key' : err instanceof NotFoundError ? 'missing' : 'corrupt';
    const object =
      err instanceof CorruptionError && err.object
        ? err.object
        : err instanceof WrongKeyError
          ? 'keys/repo'
          : `snapshots/${snapshotId}`;
    problems.push({ object, kind, detail: errorMessage(err) });
  }
  return problems;
}
