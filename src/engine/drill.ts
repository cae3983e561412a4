/**
 * Restore drill: restore a recovery point into a scratch database and directory, then prove it:
 * row counts and digests as recorded at backup, foreign keys valid, every tenant row owned by an
 * existing wedding, payment totals equal to the backed-up ones. The elapsed time is the measured RTO.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { errorMessage } from '../errors.js';
import type { Repository } from './repo/repository.js';
import { scopesLeftOut } from './restore.js';
import { restoreFiles, withoutErased } from './files/index.js';
import { checkDatabase, dropScratchDatabase, type DrillProblem } from './postgres/drill-checks.js';
import { restorePostgres } from './postgres/restore.js';
import { snapshotTree } from './tree.js';

export type { DrillProblem } from './postgres/drill-checks.js';

export interface DrillResult {
  status: 'passed' | 'failed';
  problems: DrillProblem[];
  rtoMs: number;
  tables: number;
  files: number;
}

export interface DrillOptions {
  /** Any database URL on the server where the scratch database may be created. */
  scratchServerUrl: string;
  /** Runs after the restore and before the checks (tests use it to damage the copy). */
  beforeChecks?: (scratchUrl: string) => Promise<void>;
  /** Table and column whose sum must match the backup (default payments.amount when present). */
  paymentColumn?: string;
  /**
   * Names of the scratch database and directory (default random). A caller that records them
   * beforehand can drop them if the drill dies; whatever an earlier attempt left there is dropped first.
   */
  scratch?: DrillScratch;
  /** Data classes a point of this time no longer yields (see RestoreOptions.expiredClasses). */
  expiredClasses?: ((pointTime: Date) => string[]) | undefined;
}

export interface DrillScratch {
  database: string;
  dir: string;
}

/** Scratch names derived from a test id: a dead drill's leftovers are found from its row alone. */
export function drillScratchFor(testId: string): DrillScratch {
  const tag = testId.replace(/[^0-9a-f]/gi, '').toLowerCase();
  return { database: `wv_drill_${tag}`, dir: path.join(tmpdir(), `wv-drill-${tag}`) };
}

/** Drops a drill's scratch database (on the server of serverUrl) and directory; absent ones are fine. */
export async function dropDrillScratch(serverUrl: string, scratch: DrillScratch): Promise<void> {
  await rm(scratch.dir, { recursive: true, force: true });
  await dropScratchDatabase(serverUrl, scratch.database);
}

export async function runDrill(
  repo: Repository,
  snapshotId: string,
  opts: DrillOptions,
): Promise<DrillResult> {
  const started = Date.now();
  const snap = await repo.loadSnapshot(snapshotId);
  const tree = snapshotTree(snap.tree);
  // a drill restores as every restore does: without the scopes the erasure ledger names
  const erased = await scopesLeftOut(repo, snap.time, opts.expiredClasses);
  const problems: DrillProblem[] = [];
  const names = opts.scratch ?? {
    database: `wv_drill_${randomBytes(6).toString('hex')}`,
    dir: await mkdtemp(path.join(tmpdir(), 'wv-drill-')),
  };
  if (opts.scratch) {
    await dropDrillScratch(opts.scratchServerUrl, names);
    await mkdir(names.dir, { recursive: true, mode: 0o700 });
  }
  const dir = names.dir;
  const scratch = new URL(opts.scratchServerUrl);
  scratch.pathname = `/${names.database}`;
  let files = 0;
  try {
    if (tree.postgres) {
      try {
        await restorePostgres(repo.reader({ wholePacks: true }), tree.postgres, {
          targetUrl: scratch.toString(),
          erased,
        });
      } catch (err) {
        problems.push({ object: 'database', kind: 'restore_failed', detail: errorMessage(err) });
      }
    }
    for (const [name, entries] of Object.entries(tree.files ?? {})) {
      try {
        files += (
          await restoreFiles(repo.reader({ wholePacks: true }), withoutErased(entries, erased), {
            targetDir: path.join(dir, name),
          })
        ).files;
      } catch (err) {
        problems.push({ object: `files:${name}`, kind: 'files', detail: errorMessage(err) });
      }
    }
    const rtoMs = Date.now() - started;
    if (tree.postgres && problems.length === 0) {
      await opts.beforeChecks?.(scratch.toString());
      problems.push(
        ...(await checkDatabase(
          repo.reader(),
          tree.postgres,
          scratch.toString(),
          opts.paymentColumn,
          erased,
        )),
      );
    }
    return {
      status: problems.length ? 'failed' : 'passed',
      problems,
      rtoMs,
      tables: tree.postgres?.tables.length ?? 0,
      files,
    };
  } finally {
    await dropDrillScratch(opts.scratchServerUrl, names);
  }
}
