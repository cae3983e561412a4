import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../helpers/pg.js';
import { createTestService, dbUrl, PG_ADMIN_URL, type TestService } from '../helpers/service.js';
import { createTenancySchema, TENANCY_LINES } from '../helpers/tenancy-schema.js';

const run = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '..', '..', 'bin', 'wedvault');
let svc: TestService;
let configFile: string;
let configDir: string;
/** Must never be created: the refused restores name it. */
const target = `wv_test_tenancy_restore_${Date.now()}`;
const writeConfig = (tenancy: unknown) =>
  writeFileSync(
    configFile,
    JSON.stringify({ sources: { postgres: { supplierKey: 'supplier_id', tenancy } } }),
  );

async function wedvault(args: string[], env: Record<string, string> = {}) {
  return run(BIN, args, { env: { ...process.env, ...svc.env, ...env } });
}
const failure = (p: Promise<unknown>) =>
  p.then(
    () => ({ code: 0, stderr: '' }),
    (e: { code: number; stderr: string }) => e,
  );
const exists = async (name: string) =>
  (await query(PG_ADMIN_URL, 'SELECT 1 FROM pg_database WHERE datname = $1', [name])).length > 0;

beforeAll(async () => {
  configDir = mkdtempSync(path.join(tmpdir(), 'wv-tenancy-'));
  configFile = path.join(configDir, 'config.json');
  writeConfig({});
  // the ceremony setting as PostgreSQL users write it: a schema, quoted mixed-case names
  svc = await createTestService({
    WEDVAULT_CEREMONY_DATE: 'app."Weddings"."Ceremony Date"',
    WEDVAULT_CONFIG: configFile,
  });
  await query(PG_ADMIN_URL, `CREATE DATABASE ${new URL(svc.config.sources.postgres.url).pathname.slice(1)}`);
  await createTenancySchema(svc.config.sources.postgres.url);
}, 120_000);

afterAll(async () => {
  await query(PG_ADMIN_URL, `DROP DATABASE IF EXISTS ${target}`);
  await svc?.cleanup();
  rmSync(configDir, { recursive: true, force: true });
});

describe('wedvault tenancy', () => {
  it('prints each table’s class and path', async () => {
    const { stdout } = await wedvault(['tenancy']);
    expect(stdout.trim().split('\n').sort()).toEqual([...TENANCY_LINES].sort());
    const json = JSON.parse((await wedvault(['tenancy', '--json'])).stdout) as {
      name: string;
      class: string;
    }[];
    expect(json.find((t) => t.name === 'photos')).toMatchObject({ class: 'mixed', tenant: 'wedding' });
  }, 60_000);

  it('applies the config file’s overrides, and stops with 78 naming a bad one', async () => {
    writeConfig({ 'public.bookings': { via: 'bookings_vendor_id_fkey' }, 'app."Seating"': 'platform' });
    const { stdout } = await wedvault(['tenancy']);
    expect(stdout).toContain(
      'public.bookings: supplier via bookings_vendor_id_fkey → public.suppliers.supplier_id, by override',
    );
    expect(stdout).toContain('app."Seating": platform, by override');
    for (const [tenancy, message] of [
      [{ 'app.missing': 'platform' }, '"app.missing": no such table'],
      [{ 'app.guests': { via: 'nope_fkey' } }, 'no foreign key "nope_fkey" on app.guests'],
      [{ 'public.a': { via: 'a_b_fkey' } }, '"public.a": a_b_fkey does not reach'],
      [{ 'app.guests': 'wedding' }, 'sources.postgres.tenancy'],
    ] as const) {
      writeConfig(tenancy);
      const err = await failure(wedvault(['tenancy']));
      expect(err.code, message).toBe(78);
      expect(err.stderr).toContain(message);
    }
    writeConfig({});
  }, 120_000);

  it('stops a backup with 78 naming a bad override, writing nothing', async () => {
    writeConfig({ 'public.a': { via: 'a_b_fkey' } });
    const err = await failure(wedvault(['backup', '--type', 'full', '--components', 'database']));
    writeConfig({});
    expect(err.code).toBe(78);
    expect(err.stderr).toContain('sources.postgres.tenancy "public.a": a_b_fkey does not reach');
    // the repository was not even initialised
    expect(JSON.parse((await wedvault(['snapshots', '--json'])).stdout)).toEqual([]);
  }, 120_000);
});

describe('bad input', () => {
  it('lists no snapshots of a repository not yet initialised', async () => {
    expect(JSON.parse((await wedvault(['snapshots', '--json'])).stdout)).toEqual([]);
    expect((await wedvault(['snapshots'])).stdout.trim()).toBe('(no snapshots)');
  }, 60_000);

  it('refuses a wedding the point does not hold, and a flag taken as the wedding, writing nothing', async () => {
    const { stdout } = await wedvault(['backup', '--type', 'full', '--components', 'database']);
    const point = stdout.trim();
    const flag = await failure(
      wedvault(['restore', point, '--target-database', dbUrl(target), '--wedding', '--json']),
    );
    expect(flag.code).toBe(64);
    expect(flag.stderr).toContain('--wedding needs a wedding id, got "--json"');
    const absent = await failure(
      wedvault(['restore', point, '--target-database', dbUrl(target), '--wedding', '999']),
    );
    expect(absent.code).not.toBe(0);
    expect(absent.stderr).toContain(`wedding 999 is not in recovery point ${point}`);
    expect(await exists(target)).toBe(false);
  }, 180_000);
});

describe('backups', () => {
  it('warn on stderr of a table whose class changed since the last database backup', async () => {
    const backup = () => wedvault(['backup', '--type', 'full', '--components', 'database']);
    const first = await backup();
    expect(first.stderr).not.toContain('tenancy class');
    const ls = (await wedvault(['ls', first.stdout.trim()])).stdout;
    expect(ls).toMatch(/^table {2}app\.rsvp_answers {2}2 rows {2}wedding$/m);
    expect(ls).toMatch(/^table {2}public\.photos {2}2 rows {2}mixed$/m);
    const url = svc.config.sources.postgres.url;
    await query(url, 'ALTER TABLE public.bookings DROP CONSTRAINT bookings_guest_id_fkey');
    try {
      const { stderr } = await backup();
      expect(stderr).toContain(
        'wedvault: warning: public.bookings changed tenancy class since the parent snapshot: wedding → supplier',
      );
      expect(stderr).not.toContain('app.guests changed');
    } finally {
      await query(
        url,
        'ALTER TABLE public.bookings ADD CONSTRAINT bookings_guest_id_fkey FOREIGN KEY (guest_id) REFERENCES app.guests',
      );
    }
  }, 180_000);
});
