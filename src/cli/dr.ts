/** `wedvault dr plan|run <scenario>` and `wedvault catalog rebuild`: disaster recovery from the command line. */
import type { Command } from 'commander';
import { loadConfig } from '../config/index.js';
import { createContext, type AppContext } from '../context.js';
import { ValidationError } from '../errors.js';
import { createLogger } from '../log.js';
import { isScenario, SCENARIOS, type DrPlan, type PlanParams } from '../policy/dr-plans.js';
import { executePlan, rebuildFromTargets, resolvePlan } from '../producers/dr.js';

const print = (json: boolean, value: unknown, text: string) =>
  console.log(json ? JSON.stringify(value, null, 2) : text);

async function withContext<T>(fn: (ctx: AppContext) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const ctx = await createContext(config, {
    log: createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel),
  });
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}

export function describePlan(p: DrPlan): string {
  const rto = p.rto.estimateS === null ? `unknown (${p.rto.basis})` : `${p.rto.estimateS} s (${p.rto.basis})`;
  return [
    `${p.name} [${p.scenario}]`,
    ...p.steps.map((s) => `  ${s.n}. ${s.text}`),
    `copies: ${p.copies.join(', ') || '(none)'}`,
    ...(p.point ? [`point: ${p.point.id} (${p.point.time})`] : []),
    `RTO estimate: ${rto}`,
    ...p.warnings.map((w) => `warning: ${w}`),
  ].join('\n');
}

const scenarioArg = (s: string) => {
  if (!isScenario(s) && !/^[0-9a-f-]{36}$/i.test(s))
    throw new ValidationError(`scenario: one of ${SCENARIOS.join(', ')} (or a custom plan's id), got "${s}"`);
  return s;
};

interface ParamOpts {
  lostTarget?: string;
  region?: string;
  before?: string;
  wedding?: string;
  deletedAt?: string;
}
const paramsOf = (o: ParamOpts): PlanParams => ({
  lostTarget: o.lostTarget,
  region: o.region,
  before: o.before,
  weddingId: o.wedding,
  deletedAt: o.deletedAt,
});

export function registerDrCommands(program: Command): void {
  const dr = program.command('dr').description('disaster-recovery plans: print them, run them');
  const withParams = (c: Command) =>
    c
      .option('--lost-target <name>', 'primary-target-lost: the lost target (default the primary)')
      .option('--region <location>', 'region-lost: the lost location label (default the primary’s)')
      .option('--before <time>', 'corruption: the newest point verified clean before this time')
      .option('--wedding <id>', 'wedding-deleted: the wedding')
      .option('--deleted-at <time>', 'wedding-deleted: when it was deleted')
      .option('--json', 'print JSON');
  withParams(
    dr.command('plan <scenario>').description('print the ordered steps, the copies used and an RTO estimate'),
  ).action(async (scenario: string, o: ParamOpts & { json?: boolean }) => {
    const plan = await withContext((ctx) => resolvePlan(ctx, scenarioArg(scenario), paramsOf(o)));
    print(!!o.json, plan, describePlan(plan));
  });
  withParams(dr.command('run <scenario>').description('execute the plan now, in this process'))
    .option(
      '--target-database <url>',
      'the database to recover into (wedding-deleted: the live one by default)',
    )
    .action(async (scenario: string, o: ParamOpts & { json?: boolean; targetDatabase?: string }) => {
      const out = await withContext(async (ctx) => {
        const plan = await resolvePlan(ctx, scenarioArg(scenario), paramsOf(o));
        const run = await executePlan(ctx, plan, { targetDatabase: o.targetDatabase, inline: true });
        if (!run.payload) return { plan: plan.id, ...run };
        const { processRestore } = await import('../workers/restore.js');
        const job = { id: `cli.${run.recoveryId}`, queueName: 'restore', data: run.payload };
        const result = await processRestore(job as never, ctx);
        return { plan: plan.id, recoveryId: run.recoveryId, result };
      });
      print(
        !!o.json,
        out,
        `${scenario}: done${out.recoveryId ? ` (recovery ${out.recoveryId})` : ''}\n${JSON.stringify('rebuilt' in out ? out.rebuilt : out.result)}`,
      );
    });

  const catalog = program.command('catalog').description('the service’s catalog');
  catalog
    .command('rebuild')
    .description(
      'rebuild recovery points, replicas and backed-up weddings from the repositories on the targets',
    )
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const r = await withContext((ctx) => rebuildFromTargets(ctx));
      print(
        !!o.json,
        r,
        `read ${r.seen} points; added ${r.points} points, ${r.replicas} replicas, ${r.weddings} weddings` +
          r.unreadable.map((u) => `\nunreadable: ${u.target}: ${u.error}`).join(''),
      );
    });
}
