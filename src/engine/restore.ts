/** Restores one recovery point: its database into a target database, its files into a directory. */
import path from 'node:path';
import { NotFoundError, NotInPointError } from '../errors.js';
import type { Repository } from './repo/repository.js';
import { restoreFiles, withoutErased } from './files/index.js';
import { snapshotTree } from './tree.js';
import { everyTenantOf, weddingScope } from './api.js';
import type { ReferenceReport } from './postgres/references.js';

export interface RestoreOptions {
  targetDatabase?: string | undefined;
  targetDir?: string | undefined;
  wedding?: string | undefined;
  overwrite?: boolean;
  /**
   * The data classes a point of this time no longer yields (point-relative retention rules,
   * `"30d"`): left out of the restore like an erased scope.
   */
  expiredClasses?: ((pointTime: Date) => string[]) | undefined;
}

export interface RestoreResult {
  tables?: number;
  rows?: number;
  /** Objects whose privileges name a role the target server lacks (see PostgresRestoreResult). */
  skippedGrants?: string[];
  /** One wedding: references to rows the target does not hold, set to NULL. */
  nulledReferences?: ReferenceReport[];
  files?: number;
  bytes?: number;
  durationMs: number;
}

/**
 * What every restore and drill of a point leaves out: the scopes the erasure ledger names, and
 * the classes a point of its time no longer yields (point-relative retention rules).
 */
export async function scopesLeftOut(
  repo: Repository,
  pointTime: string,
  expiredClasses: RestoreOptions['expiredClasses'],
): Promise<Set<string>> {
  return new Set([
    ...(await repo.erasedScopes()),
    ...(expiredClasses?.(new Date(pointTime)) ?? []).map(everyTenantOf),
  ]);
}

export async function restoreSnapshot(
  repo: Repository,
  id: string,
  opts: RestoreOptions,
): Promise<RestoreResult> {
  const started = Date.now();
  const snap = await repo.loadSnapshot(id);
  const tree = snapshotTree(snap.tree);
  // an older point still holds erased scopes' segments: the ledger leaves them out of every restore
  const ledger = await repo.ledger();
  const erased = await scopesLeftOut(repo, snap.time, opts.expiredClasses);
  const result: RestoreResult = { durationMs: 0 };
  if (opts.targetDatabase) {
    if (!tree.postgres) throw new NotFoundError(`recovery point ${id} holds no database`);
    // Refused before the target is touched: an absent wedding would restore empty tables. A source
    // without a weddings table lists no tenants, and then there is nothing to check against.
    const { tenants } = tree.postgres;
    const erasure =
      opts.wedding === undefined ? undefined : ledger.find((e) => e.scope === weddingScope(opts.wedding!));
    if (erasure) {
      throw new NotInPointError(
        `wedding ${opts.wedding} was erased (erasure ${erasure.erasureId}, ${erasure.time})`,
        {
          details: { wedding: opts.wedding, erasureId: erasure.erasureId },
        },
      );
    }
    if (opts.wedding !== undefined && tenants.length > 0 && !tenants.some((t) => t.id === opts.wedding)) {
      throw new NotInPointError(`wedding ${opts.wedding} is not in recovery point ${id}`, {
        details: { wedding: opts.wedding, recoveryPointId: id },
      });
    }
    const { restorePostgres } = await import('./postgres/restore.js');
    // one wedding reads a few blobs per table; the whole database reads every pack through
    const r = await restorePostgres(repo.reader({ wholePacks: !opts.wedding }), tree.postgres, {
      targetUrl: opts.targetDatabase,
      wedding: opts.wedding,
      overwrite: opts.overwrite ?? false,
      erased,
    });
    Object.assign(result, r);
  }
  if (opts.targetDir) {
    if (!tree.files) throw new NotFoundError(`recovery point ${id} holds no files`);
    const sources = Object.entries(tree.files);
    let files = 0;
    let bytes = 0;
    for (const [name, entries] of sources) {
      const dir = sources.length === 1 ? opts.targetDir : path.join(opts.targetDir, name);
      const r = await restoreFiles(repo.reader({ wholePacks: true }), withoutErased(entries, erased), {
        targetDir: dir,
      });
      files += r.files;
      bytes += r.bytes;
    }
    Object.assign(result, { files, bytes });
  }
  result.durationMs = Date.now() - started;
  return result;
}
