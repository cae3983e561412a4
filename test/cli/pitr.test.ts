import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../helpers/pg.js';
import { createTestService, PG_ADMIN_URL, type TestService } from '../helpers/service.js';

const run = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '..', '..', 'bin', 'wedvault');
let svc: TestService;
const slot = `wv_cli_pitr_${process.pid}`;
const wedvault = (args: string[]) =>
  run(BIN, args, { env: { ...process.env, ...svc.env, WEDVAULT_PITR: 'on' } }).catch(
    (e: { code: number; stdout: string; stderr: string }) => e,
  );

describe('wedvault pitr', () => {
  beforeAll(async () => {
    svc = await createTestService();
    const dir = path.join(svc.dir, 'cfg.json');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(dir, JSON.stringify({ sources: { postgres: { pitr: { slot } } } }));
    svc.env.WEDVAULT_CONFIG = dir;
    await query(PG_ADMIN_URL, `CREATE DATABASE ${svc.env.SOURCE_DATABASE_URL!.split('/').pop()}`);
    await query(
      svc.env.SOURCE_DATABASE_URL!,
      `CREATE TABLE keyed (id int PRIMARY KEY); CREATE TABLE loose (v text)`,
    );
  });
  afterAll(async () => {
    await query(svc.env.SOURCE_DATABASE_URL!, `SELECT pg_drop_replication_slot($1)`, [slot]).catch(
      () => undefined,
    );
    await svc.cleanup();
  });

  it('check names what is missing with its fix, a table without a key among them', async () => {
    const r = (await wedvault(['pitr', 'check', '--json'])) as { stdout: string; code?: number };
    const findings = JSON.parse(r.stdout) as { ok: boolean; what: string; fix?: string }[];
    expect(findings.find((f) => f.what.startsWith('wal_level'))).toMatchObject({ ok: true });
    expect(findings.find((f) => f.what.startsWith('capture slot'))!.what).toContain('missing');
    const loose = findings.find((f) => f.what.startsWith('public.loose'))!;
    expect(loose).toMatchObject({ ok: false });
    expect(loose.fix).toContain('REPLICA IDENTITY FULL');
    expect(findings.some((f) => f.what.startsWith('public.keyed'))).toBe(false);
    expect(r.code).toBe(1);
  });

  it('enable creates the slot once, and the DDL trigger only with consent', async () => {
    const first = (await wedvault(['pitr', 'enable', '--json'])) as { stdout: string };
    expect(JSON.parse(first.stdout)).toMatchObject({ slot, created: true, ddlTrigger: 'absent' });
    const again = (await wedvault(['pitr', 'enable', '--json'])) as { stdout: string };
    expect(JSON.parse(again.stdout)).toMatchObject({ created: false });
    const refused = (await wedvault(['pitr', 'enable', '--ddl-trigger'])) as { code: number; stderr: string };
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('--yes');
    const yes = (await wedvault(['pitr', 'enable', '--ddl-trigger', '--yes', '--json'])) as {
      stdout: string;
    };
    expect(JSON.parse(yes.stdout)).toMatchObject({ ddlTrigger: 'installed' });
    const triggers = await query(
      svc.env.SOURCE_DATABASE_URL!,
      `SELECT evtname FROM pg_event_trigger ORDER BY 1`,
    );
    expect(triggers.map((t) => t.evtname)).toEqual(['wedvault_ddl', 'wedvault_ddl_drop']);
  });

  it('status names the slot, its lag and each target (no repository yet: said so)', async () => {
    const r = (await wedvault(['pitr', 'status'])) as { stdout: string };
    const status = JSON.parse(r.stdout) as {
      slot: string;
      slotStatus: string;
      lagBytes: number;
      targets: { target: string; error?: string }[];
    };
    expect(status).toMatchObject({ slot, slotStatus: 'ok' });
    expect(status.lagBytes).toBeGreaterThanOrEqual(0);
    expect(status.targets.map((t) => t.target)).toEqual(svc.config.targets.map((t) => t.name));
    expect(status.targets.every((t) => typeof t.error === 'string')).toBe(true);
  });
});
