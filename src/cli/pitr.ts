/** `wedvault pitr enable|check|status`: set up continuous capture on the source, check it can run, show the window. */
import pg from 'pg';
import type { Config } from '../config/index.js';
import { ConfigError } from '../errors.js';
import { copyWindows, slotLag } from '../engine/pitr/status.js';
import { DDL_MESSAGE_PREFIX, PITR_SOURCE } from '../engine/pitr/types.js';
import {
  createCaptureSlot,
  ddlTriggerInstalled,
  installDdlTrigger,
  pitrReadiness,
  slotState,
  tablesWithoutIdentity,
} from '../engine/postgres/pitr-source.js';
import { createStorage } from '../storage/factory.js';

async function withSource<T>(config: Config, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: config.sources.postgres.url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

export interface EnableResult {
  slot: string;
  created: boolean;
  lsn?: string | undefined;
  ddlTrigger: 'installed' | 'present' | 'absent';
  notes: string[];
}

/** Creates the capture's slot (and, with consent, the DDL event trigger). */
export async function enablePitr(
  config: Config,
  o: { ddlTrigger?: boolean; yes?: boolean },
): Promise<EnableResult> {
  const slot = config.sources.postgres.pitr.slot;
  return withSource(config, async (c) => {
    const state = await slotState(c, slot);
    const lsn = state.status === 'missing' ? await createCaptureSlot(c, slot) : undefined;
    let ddlTrigger: EnableResult['ddlTrigger'] = (await ddlTriggerInstalled(c)) ? 'present' : 'absent';
    if (o.ddlTrigger && ddlTrigger === 'absent') {
      if (!o.yes)
        throw new ConfigError(
          'installing the DDL event trigger adds a function and two event triggers to the source database; run again with --yes to consent',
        );
      await installDdlTrigger(c, DDL_MESSAGE_PREFIX);
      ddlTrigger = 'installed';
    }
    const notes = [];
    if (!config.sources.postgres.pitr.enabled)
      notes.push('capture runs in the workers once WEDVAULT_PITR=on');
    if (ddlTrigger === 'absent')
      notes.push(
        'without the DDL trigger a schema change starts a new base point, and no recovery crosses it',
      );
    return { slot, created: lsn !== undefined, lsn, ddlTrigger, notes };
  });
}

export interface CheckFinding {
  ok: boolean;
  what: string;
  fix?: string | undefined;
}

/** What capture needs of the source, each with the fix when it is missing. */
export async function checkPitr(config: Config): Promise<CheckFinding[]> {
  return withSource(config, async (c) => {
    const r = await pitrReadiness(c);
    const slot = await slotState(c, config.sources.postgres.pitr.slot);
    const out: CheckFinding[] = [
      {
        ok: r.walLevel === 'logical',
        what: `wal_level = ${r.walLevel}`,
        fix: 'ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL',
      },
      {
        ok: r.replication,
        what: r.replication ? 'the role may use logical slots' : 'the role lacks the REPLICATION attribute',
        fix: 'ALTER ROLE <role> REPLICATION',
      },
      {
        ok: r.maxSlotWalKeepSizeMb !== -1,
        what:
          r.maxSlotWalKeepSizeMb === -1
            ? 'max_slot_wal_keep_size = -1: a stalled capture would keep WAL until the disk fills'
            : `max_slot_wal_keep_size = ${r.maxSlotWalKeepSizeMb} MB (a slot past it is lost: an alert and a new base backup)`,
        fix: "ALTER SYSTEM SET max_slot_wal_keep_size = '10GB'; SELECT pg_reload_conf()",
      },
      {
        ok: slot.status === 'ok' || r.freeSlots > 0,
        what: `capture slot ${config.sources.postgres.pitr.slot}: ${slot.status}${slot.status === 'missing' ? ` (${r.freeSlots} free slots)` : ''}`,
        fix: 'wedvault pitr enable',
      },
      {
        ok: await ddlTriggerInstalled(c),
        what: 'DDL event trigger',
        fix: 'wedvault pitr enable --ddl-trigger --yes (needs a superuser)',
      },
    ];
    for (const t of await tablesWithoutIdentity(c))
      out.push({
        ok: false,
        what: `${t}: no primary key, so its updates and deletes cannot name their row`,
        fix: `ALTER TABLE ${t} ADD PRIMARY KEY (…), or ALTER TABLE ${t} REPLICA IDENTITY FULL`,
      });
    return out;
  });
}

/** The recoverable window on every target, and how far the capture is behind. */
export async function pitrStatus(config: Config): Promise<unknown> {
  const slot = config.sources.postgres.pitr.slot;
  const copies = config.targets.map((t) => ({
    target: t.name,
    storage: createStorage(t, config.credentialsEnv),
  }));
  const targets = (await copyWindows(copies, config.masterKey, PITR_SOURCE)).map(
    ({ target, window, error }) => (error ? { target, error } : { target, ...window }),
  );
  return { slot, ...(await slotLag(config.sources.postgres.url, slot)), targets };
}
