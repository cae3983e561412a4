/**
 * A staged whole-database recovery: the shared tables and the first weddings (those of the next
 * days) as of the target first, reported usable; then every other wedding, built with the whole
 * database in a scratch database and merged in one transaction beside them. Each stage reads the
 * one-wedding feeds or the whole feed, so nothing needs the stream split by wedding afresh.
 * The first weddings are in use by then: the second stage only inserts the others' rows.
 */
import { dropScratchDatabase } from '../postgres/drill-checks.js';
import { mergeWedding } from '../postgres/merge.js';
import { checkRecovered } from '../postgres/recovery-checks.js';
import { settleSequences } from '../postgres/sequences.js';
import { databaseName, prepareDatabase } from '../postgres/restore-target.js';
import type { Repository } from '../repo/repository.js';
import type { PgTree } from '../tree.js';
import { build, rebuildMerged, scratchName, summary, undoNew, type Built, type Context } from './rebuild.js';
import type { RecoverOptions } from './recover.js';

export async function rebuildStaged(
  repo: Repository,
  tree: PgTree,
  opts: RecoverOptions,
  ctx: Context,
  first: string[],
): Promise<Built> {
  const url = opts.targetDatabase;
  const scratch = new URL(url);
  scratch.pathname = `/${scratchName()}`;
  const scratchUrl = scratch.toString();
  const part = (from: number, to: number): Context => ({
    ...ctx,
    progress: (f, step) => ctx.progress(from + (to - from) * f, step),
  });
  const state = await prepareDatabase(url, { overwrite: false, create: true, keepExisting: false });
  let usable = false;
  try {
    // stage 1: the first wedding with the shared tables, the other first weddings merged beside it
    const [head, ...others] = first;
    const one = await build(repo, tree, url, { ...opts, wedding: head }, { ...part(0, 0.2), merge: false });
    const problems = [...one.problems];
    for (const w of others) {
      const m = await rebuildMerged(
        repo,
        tree,
        { ...opts, wedding: w, mode: 'merge', dryRun: false },
        { ...part(0.2, 0.3), merge: true },
      );
      problems.push(...m.validation.problems);
    }
    // a caller may hold the second stage back until it has looked (tests do)
    await opts.onStage?.({
      name: 'first',
      weddings: first,
      usableAt: new Date().toISOString(),
    });
    usable = true;
    // stage 2: the whole database beside it, then every other wedding's rows in one transaction
    await prepareDatabase(scratchUrl, { overwrite: false, create: true, keepExisting: false });
    const whole = await build(repo, tree, scratchUrl, { ...opts, wedding: undefined }, part(0.3, 0.9));
    problems.push(...whole.problems);
    const merge = await mergeWedding(scratchUrl, url, tree, { except: first }, false);
    const sequences = await settleSequences(url, whole.replay.sequences);
    const rest = tree.tenants.map((t) => t.id).filter((id) => !first.includes(id));
    await opts.onStage?.({ name: 'rest', weddings: rest, usableAt: new Date().toISOString() });
    const checks = await checkRecovered(url, tree, { paymentColumn: opts.paymentColumn });
    problems.push(...checks.problems);
    ctx.progress(1, 'validated');
    return {
      ...summary(whole.replay),
      validation: {
        ok: problems.length === 0,
        problems,
        checks: {
          ...checks.checks,
          sequencesMoved: sequences,
          merged: merge.inserted,
          firstStage: one.checks.checks,
        },
      },
    };
  } catch (err) {
    // once the first weddings are in use, their database stays: only the rest failed
    if (!usable) await undoNew(url, state);
    else if (err instanceof Error)
      err.message = `the first weddings (${first.join(', ')}) are recovered and in use in ${databaseName(url)}; the others failed: ${err.message}`;
    throw err;
  } finally {
    await dropScratchDatabase(url, databaseName(scratchUrl)).catch(() => undefined);
  }
}
