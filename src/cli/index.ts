/** The `wedvault` command: backup, restore, check, list snapshots and their contents, straight against the repository. */
import { randomUUID } from 'node:crypto';
import { Command, Option } from 'commander';
import { loadConfig, type Config } from '../config/index.js';
import { runBackup } from '../engine/backup.js';
import { tableLabel } from '../engine/postgres/tenancy.js';
import { describeChange } from '../engine/postgres/tenancy-record.js';
import { Repository } from '../engine/repo/repository.js';
import { restoreFromCopies } from '../engine/failover.js';
import { snapshotTree } from '../engine/tree.js';
import { validatePoint } from '../engine/validate/validate.js';
import {
  ConfigError,
  CorruptionError,
  errorMessage,
  NotFoundError,
  ValidationError,
  WedvaultError,
} from '../errors.js';
import { componentSchema } from '../queues/payloads.js';
import { createStorage } from '../storage/factory.js';
import { recordCliBackup } from './catalog.js';
import { expiredPointClasses } from '../policy/class-expiry.js';
import { boundHeapGrowth } from '../heap.js';

function primary(config: Config) {
  const t = config.targets.find((x) => x.name === config.primaryTarget)!;
  return createStorage(t, config.credentialsEnv);
}

function print(json: boolean, value: unknown, text: string): void {
  console.log(json ? JSON.stringify(value, null, 2) : text);
}

boundHeapGrowth();

const program = new Command('wedvault').description('wedvault backup engine').showHelpAfterError();

program
  .command('backup')
  .description('back up the configured sources into the primary target; prints the recovery point id')
  .addOption(
    new Option('--type <type>', 'backup type')
      .choices(['full', 'incremental', 'files'])
      .makeOptionMandatory(),
  )
  .option('--components <list>', 'comma-separated: database, files (default: by type)')
  .option('--wedding <tenantId>', 'record the backup against this wedding')
  .option('--json', 'print JSON')
  .action(
    async (opts: {
      type: 'full' | 'incremental' | 'files';
      components?: string;
      wedding?: string;
      json?: boolean;
    }) => {
      const components = (opts.components ? opts.components.split(',') : []).map((c) =>
        componentSchema.parse(c.trim()),
      );
      const config = loadConfig();
      const operationId = randomUUID();
      const out = await runBackup({
        storage: primary(config),
        masterKey: config.masterKey,
        type: opts.type,
        components,
        weddingId: opts.wedding,
        operationId,
        sources: config.sources,
        classes: config.retention.classes,
        storageFor: (name) =>
          createStorage(
            config.targets.find((t) => t.name === name)!,
            config.credentialsEnv,
          ),
      });
      for (const change of out.tenancyChanges) console.error(`wedvault: warning: ${describeChange(change)}`);
      for (const e of out.erased)
        console.error(`wedvault: left out ${e.rows} rows of ${e.scope}, erased (the erasure ledger)`);
      const recorded = await recordCliBackup(config, operationId, opts.type, out).catch((err: unknown) => {
        console.error(`wedvault: warning: backup done but not recorded in the catalog: ${errorMessage(err)}`);
        return false;
      });
      print(
        !!opts.json,
        {
          recoveryPointId: out.snapshotId,
          operationId,
          recorded,
          stats: out.stats,
          files: out.files,
          objects: out.objects.length,
        },
        out.snapshotId,
      );
    },
  );

program
  .command('restore [recoveryPointId]')
  .description('restore a recovery point into a database and/or a directory')
  .option('--target-database <url>', 'database to restore into (created when missing)')
  .option('--target-dir <path>', 'directory to restore files into')
  .option('--wedding <tenantId>', 'restore only this wedding’s rows')
  .option('--overwrite', 'allow restoring into a database that already holds tables')
  .option(
    '--to-time <time>',
    'recover to this time (ISO 8601, any zone or Z): a base point + change segments',
  )
  .option(
    '--merge',
    'with --to-time and --wedding: insert the wedding’s rows into the live --target-database',
  )
  .option('--dry-run', 'with --merge: count what would be inserted and the conflicts, change nothing')
  .option('--json', 'print JSON')
  .action(
    async (
      id: string | undefined,
      opts: {
        toTime?: string;
        merge?: boolean;
        dryRun?: boolean;
        targetDatabase?: string;
        targetDir?: string;
        wedding?: string;
        overwrite?: boolean;
        json?: boolean;
      },
    ) => {
      // `--wedding --json` hands "--json" over as the wedding id
      if (opts.wedding !== undefined && (opts.wedding === '' || opts.wedding.startsWith('-'))) {
        throw new ValidationError(`--wedding needs a wedding id, got "${opts.wedding}"`);
      }
      if (opts.toTime !== undefined) {
        const { recoverToTime, describeRecovery } = await import('./recover.js');
        const r = await recoverToTime(loadConfig(), id, { ...opts, toTime: opts.toTime });
        print(!!opts.json, r, describeRecovery(r));
        if (!r.validation.ok || (r.merge?.conflicts.length ?? 0) > 0) process.exitCode = 1;
        return;
      }
      if (id === undefined)
        throw new ValidationError('restore needs a <recoveryPointId> (or --to-time <time>)');
      if (!opts.targetDatabase && !opts.targetDir) {
        throw new WedvaultError('restore needs --target-database <url> or --target-dir <path>');
      }
      const config = loadConfig();
      // Primary first, then every other target: a copy that is down or corrupt hands over to the next.
      const copies = config.targets.map((t) => ({
        target: t.name,
        storage: createStorage(t, config.credentialsEnv),
      }));
      const result = await restoreFromCopies(copies, config.masterKey, id, {
        targetDatabase: opts.targetDatabase,
        targetDir: opts.targetDir,
        wedding: opts.wedding,
        overwrite: !!opts.overwrite,
        expiredClasses: expiredPointClasses(config.retention.classes ?? []),
      });
      print(!!opts.json, { recoveryPointId: id, ...result }, `restored ${id} from ${result.target}`);
    },
  );

program
  .command('check [recoveryPointId]')
  .description('verify a recovery point (default: the newest) on targets, with the check the verify job runs')
  .option('--full', 'read every pack whole and open every blob (default: quick)')
  .option('--targets <list>', 'comma-separated target names (default: the primary)')
  .option('--repair', 'replace damaged objects from a copy proven sound')
  .option('--json', 'print JSON')
  .action(
    async (
      id: string | undefined,
      opts: { full?: boolean; targets?: string; repair?: boolean; json?: boolean },
    ) => {
      const config = loadConfig();
      const repo = await Repository.open(primary(config), config.masterKey);
      const snapshotId = id ?? (await repo.listSnapshots()).at(-1)?.id;
      if (!snapshotId) throw new NotFoundError('no recovery point to check');
      const names = opts.targets ? opts.targets.split(',').map((n) => n.trim()) : [config.primaryTarget];
      const copies = names.map((name) => {
        const t = config.targets.find((x) => x.name === name);
        if (!t) throw new ValidationError(`unknown target ${name}`);
        return { target: name, storage: createStorage(t, config.credentialsEnv) };
      });
      // the service takes these from the catalog; here the primary lists what the point needs,
      // reading the tree's record lists: damage there is this check's finding, not a crash
      let expected: { key: string; size: number }[];
      try {
        expected = await repo.objectsForSnapshot(snapshotId);
      } catch (err) {
        if (!(err instanceof CorruptionError)) throw err;
        const object = err.object ?? snapshotId;
        const problem = { target: config.primaryTarget, object, kind: 'corrupt', detail: err.message };
        print(
          !!opts.json,
          { recoveryPointId: snapshotId, status: 'failed', problems: [problem] },
          [`${snapshotId}  failed`, `${problem.target}  ${object}  corrupt  ${err.message}`].join('\n'),
        );
        process.exitCode = 1;
        return;
      }
      const r = await validatePoint({
        snapshotId,
        expected,
        copies,
        masterKey: config.masterKey,
        mode: opts.full ? 'full' : 'quick',
        repair: !!opts.repair,
      });
      const lines = r.problems.map(
        (p) => `${p.target}  ${p.object}  ${p.kind}${p.repaired ? ' (repaired)' : ''}  ${p.detail ?? ''}`,
      );
      print(
        !!opts.json,
        { recoveryPointId: snapshotId, ...r },
        [`${snapshotId}  ${r.status}`, ...lines].join('\n'),
      );
      if (r.status !== 'passed') process.exitCode = 1;
    },
  );

program
  .command('snapshots')
  .description('list recovery points in the primary target’s repository')
  .option('--json', 'print JSON')
  .action(async (opts: { json?: boolean }) => {
    const config = loadConfig();
    // a repository no backup has written to yet holds no snapshots; that is not an error
    const repo = await Repository.open(primary(config), config.masterKey).catch((err: unknown) =>
      err instanceof NotFoundError ? undefined : Promise.reject(err),
    );
    const snaps = repo ? await repo.listSnapshots() : [];
    print(
      !!opts.json,
      snaps,
      snaps.map((s) => `${s.id}  ${s.time}  ${s.type}`).join('\n') || '(no snapshots)',
    );
  });

program
  .command('ls <recoveryPointId>')
  .description('list what a recovery point holds: tables with row counts and tenancy class, files with sizes')
  .option('--json', 'print JSON')
  .action(async (id: string, opts: { json?: boolean }) => {
    const config = loadConfig();
    const repo = await Repository.open(primary(config), config.masterKey);
    const snap = await repo.loadSnapshot(id);
    const tree = snapshotTree(snap.tree);
    const lines: string[] = [];
    for (const t of tree.postgres?.tables ?? []) {
      const tenancy = tree.postgres?.tenancy?.[tableLabel(t)];
      lines.push(`table  ${t.schema}.${t.name}  ${t.rowCount} rows${tenancy ? `  ${tenancy.class}` : ''}`);
    }
    for (const [source, entries] of Object.entries(tree.files ?? {})) {
      for (const e of entries) lines.push(`file   ${source}:${e.path}  ${e.size} bytes`);
    }
    print(!!opts.json, tree, lines.join('\n'));
  });

program
  .command('prune')
  .description(
    'remove from every target what no recovery point needs (unused packs deleted, mostly unused ones repacked)',
  )
  .option('--dry-run', 'report what would go, change nothing')
  .option('--wait <seconds>', 'wait this long for running backups on a target', '0')
  .option('--grace <minutes>', 'never delete packs younger than this', '60')
  .option('--json', 'print JSON')
  .action(async (opts: { dryRun?: boolean; wait: string; grace: string; json?: boolean }) => {
    const { pruneTargets, describeOutcome, progressTo } = await import('./prune.js');
    const outcomes = await pruneTargets(
      loadConfig(),
      { dryRun: !!opts.dryRun, waitMs: Number(opts.wait) * 1000, graceMs: Number(opts.grace) * 60_000 },
      progressTo,
    );
    print(!!opts.json, outcomes, outcomes.map(describeOutcome).join('\n'));
    if (outcomes.some((o) => o.error)) process.exitCode = 1;
  });

program
  .command('tenancy')
  .description(
    'which wedding or supplier owns each table of the configured database, and through which foreign keys',
  )
  .option('--json', 'print JSON')
  .action(async (opts: { json?: boolean }) => {
    const config = loadConfig();
    const { printTenancy } = await import('./tenancy.js');
    await printTenancy(config.sources.postgres, !!opts.json);
  });

const pitr = program.command('pitr').description('continuous capture for point-in-time recovery');
pitr
  .command('enable')
  .description(
    "create the capture's logical slot on the source (and, with --ddl-trigger --yes, the DDL event trigger)",
  )
  .option('--ddl-trigger', 'install an event trigger that writes each DDL statement into the change stream')
  .option('--yes', 'consent to changing the source database (the DDL trigger)')
  .option('--json', 'print JSON')
  .action(async (opts: { ddlTrigger?: boolean; yes?: boolean; json?: boolean }) => {
    const { enablePitr } = await import('./pitr.js');
    const r = await enablePitr(loadConfig(), opts);
    const text = [
      `slot ${r.slot}: ${r.created ? `created at ${r.lsn}` : 'already there'}`,
      `DDL trigger: ${r.ddlTrigger}`,
      ...r.notes.map((n) => `note: ${n}`),
    ].join('\n');
    print(!!opts.json, r, text);
  });
pitr
  .command('check')
  .description(
    'what capture needs of the source (wal_level, REPLICATION, slot WAL limit, replica identity), each with its fix',
  )
  .option('--json', 'print JSON')
  .action(async (opts: { json?: boolean }) => {
    const { checkPitr } = await import('./pitr.js');
    const findings = await checkPitr(loadConfig());
    const text = findings
      .map((f) => `${f.ok ? 'ok  ' : 'FIX '} ${f.what}${f.ok || !f.fix ? '' : `\n     ${f.fix}`}`)
      .join('\n');
    print(!!opts.json, findings, text);
    if (findings.some((f) => !f.ok && !f.what.startsWith('DDL'))) process.exitCode = 1;
  });
pitr
  .command('status')
  .description('the recoverable window on every target, gaps, schema breaks and the capture lag')
  .action(async () => {
    const { pitrStatus } = await import('./pitr.js');
    console.log(JSON.stringify(await pitrStatus(loadConfig()), null, 2));
  });

program
  .command('erase')
  .description(
    'erase one couple (--wedding) or supplier (--supplier) from every target, with a signed certificate',
  )
  .option('--wedding <id>', 'the wedding to erase')
  .option('--supplier <id>', 'the supplier to erase')
  .requiredOption('--reason <text>', 'why (recorded in the ledger and the certificate)')
  .option('--requested-by <who>', 'who asked', 'cli')
  .option('--json', 'print the certificate as JSON')
  .action(
    async (opts: {
      wedding?: string;
      supplier?: string;
      reason: string;
      requestedBy: string;
      json?: boolean;
    }) => {
      const { eraseNow } = await import('./erase.js');
      const cert = await eraseNow(loadConfig(), opts);
      print(!!opts.json, cert, cert.text);
    },
  );

program
  .command('erasure')
  .description('erasures done')
  .command('verify <erasureId>')
  .description(
    "re-check an erasure: the certificate's signature, and on every target the ledger and a failing read",
  )
  .option('--json', 'print JSON')
  .action(async (erasureId: string, opts: { json?: boolean }) => {
    const { verifyErasure } = await import('./erase.js');
    const r = await verifyErasure(loadConfig(), erasureId);
    const lines = [
      `erasure ${r.erasureId} (${r.scope}): signature ${r.signature ? 'valid' : 'INVALID'}`,
      ...r.targets.map((t) => `- ${t.target}: ledger ${t.ledger ? 'present' : 'MISSING'}; ${t.verification}`),
    ];
    print(!!opts.json, r, lines.join('\n'));
    if (!r.ok) process.exitCode = 1;
  });

program
  .command('forget')
  .description(
    'apply the retention policy: list every recovery point with keep or forget and why, and forget (catalog and every target)',
  )
  .option('--dry-run', 'only print what would be forgotten')
  .option('--json', 'print JSON')
  .action(async (opts: { dryRun?: boolean; json?: boolean }) => {
    const { forgetCommand } = await import('./forget.js');
    await forgetCommand(loadConfig(), { dryRun: !!opts.dryRun, json: !!opts.json });
  });

(await import('./dr.js')).registerDrCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  console.error(`wedvault: ${errorMessage(err)}`);
  // 78 as the service uses it: the configuration is wrong, running again will not help
  process.exit(
    err instanceof ConfigError ? 78 : err instanceof WedvaultError && err.code === 'invalid_request' ? 64 : 1,
  );
}
