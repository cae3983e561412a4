/** Measures full verification throughput of one recovery point on one store, for bench/run.ts. */
import { performance } from 'node:perf_hooks';
import { CorruptionError } from '../../errors.js';
import type { Storage } from '../../storage/types.js';
import { Repository } from '../repo/repository.js';
import { validatePoint } from './validate.js';

/** MB are 10^6 bytes, as restic and most tools report them. */
export async function fullVerifyThroughput(
  storage: Storage,
  masterKey: Buffer,
  snapshotId: string,
): Promise<{ bytes: number; seconds: number; mbPerSec: number }> {
  // Listing the point's objects is the catalog's job at backup time: not part of what is timed.
  const expected = await (await Repository.open(storage, masterKey)).objectsForSnapshot(snapshotId);
  const started = performance.now();
  const r = await validatePoint({
    snapshotId,
    expected,
    copies: [{ target: storage.name, storage }],
    masterKey,
    mode: 'full',
  });
  const seconds = (performance.now() - started) / 1000;
  if (r.status !== 'passed') {
    const p = r.problems[0]!;
    throw new CorruptionError(`full verification failed: ${p.object} ${p.kind}`, { object: p.object });
  }
  const bytes = r.perTarget[0]!.bytesRead;
  return { bytes, seconds, mbPerSec: bytes / 1e6 / seconds };
}
