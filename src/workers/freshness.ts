/**
 * 3-2-1 freshness: when any check finds that a target has lost its data, every copy on it stops
 * counting at once (replicas become `unverified`), instead of each point waiting for its own re-check.
 *
 * "Lost its data" is decided per target, never from one bad object: the repository's `config` or
 * `keys/repo` object is missing, corrupt or opens under another key, or at least half of one point's
 * objects are missing there. One corrupt or missing pack of one point fails only that point's replica.
 * A target that does not answer is down, not lost: its copies keep their state.
 */
import { markTargetUnverified } from '../catalog/recovery-points.js';
import { recordTargetFailure } from '../catalog/targets.js';
import type { AppContext } from '../context.js';
import { CONFIG_OBJECT } from '../engine/repo/repository.js';
import { REPO_KEY_OBJECT } from '../engine/repo/keys.js';
import type { ValidationProblem } from '../engine/validate/types.js';
import { NotFoundError, errorMessage } from '../errors.js';

const REPOSITORY_OBJECTS = new Set([CONFIG_OBJECT, REPO_KEY_OBJECT]);

/** Why a validation run shows `target` lost its data, or undefined when its findings are local to the point. */
export function lostInValidation(
  target: string,
  problems: ValidationProblem[],
  expectedObjects: number,
): string | undefined {
  const open = problems.filter((p) => p.target === target && !p.repaired);
  const repo = problems.find(
    (p) =>
      p.target === target &&
      REPOSITORY_OBJECTS.has(p.object) &&
      p.kind !== 'size' &&
      p.kind !== 'unreachable',
  );
  if (repo) return `repository object ${repo.object} ${repo.kind}`;
  const missing = open.filter((p) => p.kind === 'missing').length;
  if (expectedObjects > 0 && missing * 2 >= expectedObjects) {
    return `${missing} of ${expectedObjects} objects of one point missing`;
  }
  return undefined;
}

/** After a failure against a target: is its repository still there? Only a definite "not found" says lost. */
export async function probeTarget(ctx: AppContext, target: string, context: string): Promise<void> {
  try {
    await ctx.storage(target).stat(CONFIG_OBJECT);
  } catch (err) {
    if (err instanceof NotFoundError)
      await markTargetLost(ctx, target, `${context}: repository config missing`);
    else ctx.log.debug({ target, err: errorMessage(err) }, 'target probe failed; treated as down, not lost');
  }
}

export async function markTargetLost(ctx: AppContext, target: string, reason: string): Promise<void> {
  const changed = await markTargetUnverified(ctx.db, target, `target lost its data: ${reason}`);
  await recordTargetFailure(ctx.db, target, `lost its data: ${reason}`);
  ctx.log.warn(
    { target, reason, replicas: changed },
    'target lost its data: its copies no longer count for 3-2-1',
  );
}
