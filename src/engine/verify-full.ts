/**
 * Full verification of one recovery point on every copy: every object present with its size, every
 * pack read back with every blob decrypted, decompressed and re-hashed, indexes and snapshot checked.
 * With repair, a bad or missing object is replaced from a copy where the same object is proven good.
 */
import { createHash } from 'node:crypto';
import { errorMessage } from '../errors.js';
import { getBuffer, type Storage } from '../storage/types.js';
import { packIdOf } from './repo/pack.js';
import { Repository } from './repo/repository.js';
import { quickVerify, type Problem } from './verify.js';

export interface Copy {
  target: string;
  storage: Storage;
}

export interface Repair {
  target: string;
  object: string;
  from: string;
}

export interface FullResult {
  problems: (Problem & { target: string; repaired?: boolean })[];
  repairs: Repair[];
}

async function inspect(
  copy: Copy,
  masterKey: Buffer,
  pointId: string,
  expected: { key: string; size: number }[],
) {
  const wanted = new Set(expected.map((o) => o.key));
  const found: Problem[] = await quickVerify(copy.storage, masterKey, pointId, expected);
  if (found.some((p) => p.kind === 'unreachable')) return found;
  try {
    const repo = await Repository.open(copy.storage, masterKey);
    for (const p of await repo.check({ readData: true })) {
      if (wanted.has(p.object) && !found.some((f) => f.object === p.object)) {
        found.push({ object: p.object, kind: p.kind === 'erased' ? 'missing' : p.kind, detail: p.detail });
      }
    }
  } catch (err) {
    if (!found.length) found.push({ object: 'keys/repo', kind: 'corrupt', detail: errorMessage(err) });
  }
  return found;
}

/** A pack's name is the SHA-256 of its bytes; other objects are trusted when their copy checked clean. */
function provablyGood(key: string, bytes: Buffer): boolean {
  if (!key.startsWith('data/')) return true;
  return createHash('sha256').update(bytes).digest('hex') === packIdOf(key);
}

export async function fullVerify(
  copies: Copy[],
  masterKey: Buffer,
  pointId: string,
  expected: { key: string; size: number }[],
  opts: { repair?: boolean } = {},
): Promise<FullResult> {
  const byTarget = new Map<string, Problem[]>();
  for (const c of copies) byTarget.set(c.target, await inspect(c, masterKey, pointId, expected));
  const initial = new Map([...byTarget].map(([t, ps]) => [t, [...ps]]));
  const repairs: Repair[] = [];
  if (opts.repair) {
    for (const c of copies) {
      const bad = byTarget.get(c.target)!.filter((p) => p.kind !== 'unreachable');
      for (const p of bad) {
        const donor = copies.find(
          (d) =>
            d !== c &&
            !byTarget.get(d.target)!.some((q) => q.object === p.object || q.kind === 'unreachable'),
        );
        if (!donor) continue;
        try {
          const bytes = await getBuffer(donor.storage, p.object);
          if (!provablyGood(p.object, bytes)) continue;
          const size = expected.find((o) => o.key === p.object)?.size;
          if (size !== undefined && size !== bytes.length) continue;
          await c.storage.put(p.object, bytes, { md5: createHash('md5').update(bytes).digest() });
          repairs.push({ target: c.target, object: p.object, from: donor.target });
        } catch {
          // the problem stays reported: unrepaired
        }
      }
      if (repairs.some((r) => r.target === c.target)) {
        byTarget.set(c.target, await inspect(c, masterKey, pointId, expected));
      }
    }
  }
  const problems: FullResult['problems'] = [];
  for (const c of copies) {
    const now = byTarget.get(c.target)!;
    for (const p of now) problems.push({ ...p, target: c.target, repaired: false });
    for (const r of repairs.filter((x) => x.target === c.target && !now.some((p) => p.object === x.object))) {
      problems.push({
        object: r.object,
        kind: initial.get(c.target)!.find((p) => p.object === r.object)?.kind ?? 'corrupt',
        target: c.target,
        detail: `replaced from ${r.from}`,
        repaired: true,
      });
    }
  }
  return { problems, repairs };
}
