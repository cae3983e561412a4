/** Validates one recovery point on every copy (quick or full) and, when asked, repairs damaged copies from healthy ones. */
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ValidationError } from '../../errors.js';
import type { Storage } from '../../storage/types.js';
import type { CopyReport, Found, PointCheckOptions } from '../repo/check.js';
import { objectKind, type Trust } from '../repo/objects.js';
import { checkMasterKey, Repository } from '../repo/repository.js';
import { repairObject } from './repair.js';
import type { Copy, Repair, ValidateOptions, ValidationProblem, ValidationResult } from './types.js';

export type * from './types.js';

/** Repairing keys or an index can unmask problems it hid; a few rounds settle any real case. */
const MAX_ROUNDS = 3;

export async function validatePoint(opts: ValidateOptions): Promise<ValidationResult> {
  checkOptions(opts);
  const meters = new Map(opts.copies.map((c) => [c.target, { bytes: 0 }]));
  const copies: Copy[] = opts.copies.map((c) => ({
    target: c.target,
    storage: metered(c.storage, meters.get(c.target)!),
  }));
  const checkOpts: PointCheckOptions = {
    snapshotId: opts.snapshotId,
    expected: opts.expected,
    masterKey: opts.masterKey,
    mode: opts.mode,
    sample: opts.mode === 'full' ? (opts.sample ?? 1) : 1,
    concurrency: opts.concurrency ?? 4,
  };
  const reports = new Map<string, CopyReport>(
    await Promise.all(
      copies.map(async (c) => [c.target, await Repository.check(c.target, c.storage, checkOpts)] as const),
    ),
  );
  // Every problem as first seen, whatever later rounds find.
  const seen = new Map(copies.map((c) => [c.target, new Map<string, Found>()]));
  const remember = (r: CopyReport) => {
    const m = seen.get(r.target)!;
    for (const [object, f] of r.problems) if (!m.has(object)) m.set(object, f);
  };
  reports.forEach(remember);

  const repairs: Repair[] = [];
  const refused = new Map<string, string>();
  if (opts.repair) {
    const sizes = new Map(opts.expected.map((o) => [o.key, o.size]));
    for (let round = 0; round < MAX_ROUNDS; round++) {
      // Any copy that opens under the master key tells sound bytes from bad ones.
      const trust = [...reports.values()].find((r) => r.trust)?.trust;
      let again = false;
      for (const victim of copies) {
        const rep = reports.get(victim.target)!;
        let unmask = false;
        for (const [object, found] of [...rep.problems]) {
          const id = `${victim.target}\n${object}`;
          if (refused.has(id) || repairs.some((r) => r.target === victim.target && r.object === object))
            continue;
          const why = refusal(rep, object, found, trust);
          if (why !== undefined || !trust) {
            refused.set(id, why ?? '');
            continue;
          }
          const donors = copies.filter((d) => {
            const r = reports.get(d.target)!;
            return d !== victim && !r.unreachable && !r.problems.has(object);
          });
          const out = await repairObject({ object, size: sizes.get(object), victim, donors, trust });
          if ('why' in out) {
            refused.set(id, out.why);
            continue;
          }
          repairs.push({ target: victim.target, object, from: out.from });
          rep.problems.delete(object);
          if (objectKind(object) !== 'pack') unmask = true;
        }
        if (unmask) {
          const fresh = await Repository.check(victim.target, victim.storage, checkOpts);
          reports.set(victim.target, fresh);
          remember(fresh);
          again = true;
        }
      }
      if (!again) break;
    }
  }
  return result(opts, copies, reports, seen, repairs, refused, meters);
}

function result(
  opts: ValidateOptions,
  copies: Copy[],
  reports: Map<string, CopyReport>,
  seen: Map<string, Map<string, Found>>,
  repairs: Repair[],
  refused: Map<string, string>,
  meters: Map<string, { bytes: number }>,
): ValidationResult {
  const problems: ValidationProblem[] = [];
  const perTarget = copies.map((c) => {
    const now = reports.get(c.target)!;
    const touched = repairs.some((r) => r.target === c.target);
    let ok = true;
    for (const [object, f] of [...seen.get(c.target)!].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const p: ValidationProblem = { target: c.target, object, kind: f.kind };
      if (f.detail) p.detail = f.detail;
      if (opts.repair) {
        // Repaired: replaced (or fixed with the objects it depended on) and no longer found.
        p.repaired = touched && !now.problems.has(object);
        if (!p.repaired) {
          const why = refused.get(`${c.target}\n${object}`) || 'still damaged after repair';
          p.detail = `${p.detail ? `${p.detail}; ` : ''}unrepairable: ${why}`;
        }
      }
      ok &&= p.repaired === true;
      problems.push(p);
    }
    return {
      target: c.target,
      ok,
      objectsChecked: now.objectsChecked,
      bytesRead: meters.get(c.target)!.bytes,
    };
  });
  return {
    status: problems.every((p) => p.repaired === true) ? 'passed' : 'failed',
    problems,
    repairs,
    perTarget,
  };
}

/** Why an object cannot be repaired by copying it, or undefined when it can be tried. */
function refusal(
  rep: CopyReport,
  object: string,
  found: Found,
  trust: Trust | undefined,
): string | undefined {
  if (!trust) return 'no copy opens under the master key, so none can be proven sound';
  if (rep.unreachable) return 'the target is unreachable';
  if (found.repairable === false || objectKind(object) === 'other') return 'the fault lies in other objects';
  if (isForeign(rep, trust.repoId)) {
    return `the target holds another repository (${[...new Set(rep.claims)].join(', ')}); it is not overwritten`;
  }
  return undefined;
}

/**
 * Another repository lives at the target when neither its config nor its keys/repo names ours: a
 * damaged one of the two still leaves the other naming ours, so damage is repaired, not refused.
 */
function isForeign(rep: CopyReport, repoId: string): boolean {
  return rep.claims.length > 0 && rep.claims.every((id) => id !== repoId);
}

function checkOptions(opts: ValidateOptions): void {
  checkMasterKey(opts.masterKey);
  if (opts.copies.length === 0) throw new ValidationError('validatePoint: no copies to validate');
  if (new Set(opts.copies.map((c) => c.target)).size !== opts.copies.length) {
    throw new ValidationError('validatePoint: target names must be unique');
  }
  if (opts.sample !== undefined && !(opts.sample >= 0 && opts.sample <= 1)) {
    throw new ValidationError(`validatePoint: sample must be within 0..1, got ${opts.sample}`);
  }
}

/** Wraps a store so every byte read through it is counted. */
function metered(storage: Storage, meter: { bytes: number }): Storage {
  return {
    name: storage.name,
    put: (key, body, o) => storage.put(key, body, o),
    stat: (key) => storage.stat(key),
    list: (prefix) => storage.list(prefix),
    delete: (key) => storage.delete(key),
    get: async (key, range) => {
      const source = await storage.get(key, range);
      const counter = new Transform({
        transform(chunk: Buffer, _enc, done) {
          meter.bytes += chunk.length;
          done(null, chunk);
        },
      });
      // pipeline hands a source error on to the counter, so the reader sees it.
      pipeline(source, counter).catch(() => undefined);
      return counter;
    },
  };
}
