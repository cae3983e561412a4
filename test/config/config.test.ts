import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';

// Generated master keys land in these directories: none may outlive the run.
const dirs: string[] = [];
const tmp = () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'wv-config-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('configuration', () => {
  it('starts on defaults with a generated 0600 master key outside the data directory', () => {
    const dir = tmp();
    const c = loadConfig({
      WEDVAULT_DATA_DIR: path.join(dir, 'data'),
      WEDVAULT_FILES_DIR: path.join(dir, 'files'),
    });
    expect(c.port).toBe(3000);
    expect(c.masterKeyGenerated).toBe(true);
    expect(c.masterKey).toHaveLength(32);
    expect(statSync(c.masterKeyFile!).mode & 0o777).toBe(0o600);
    expect(c.masterKeyFile!.startsWith(c.dataDir + path.sep)).toBe(false);
    expect(c.targets.map((t) => t.type)).toEqual(['local', 'local']);
    expect(statSync(path.join(dir, 'files')).isDirectory()).toBe(true);
    // the same key is read back on the next start
    const again = loadConfig({
      WEDVAULT_DATA_DIR: path.join(dir, 'data'),
      WEDVAULT_FILES_DIR: path.join(dir, 'files'),
    });
    expect(again.masterKey.equals(c.masterKey)).toBe(true);
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ WEDVAULT_MASTER_KEY: 'short' }, 'WEDVAULT_MASTER_KEY'],
    [{ WEDVAULT_CEREMONY_DATE: 'weddings' }, 'WEDVAULT_CEREMONY_DATE'],
    [{ WEDVAULT_WEDDING_TIMEZONE: 'weddings' }, 'WEDVAULT_WEDDING_TIMEZONE'],
    [{ WEDVAULT_WEDDING_TIMEZONE: 'venues.time_zone' }, 'WEDVAULT_WEDDING_TIMEZONE'],
  ])('a wrong value names the variable: %o', (env, name) => {
    const dir = tmp();
    expect(() =>
      loadConfig({
        WEDVAULT_DATA_DIR: dir,
        WEDVAULT_FILES_DIR: path.join(dir, 'files'),
        WEDVAULT_KEY_FILE: path.join(dir, 'k'),
        ...env,
      }),
    ).toThrow(new RegExp(name));
  });

  it('validates the config file and names the bad entry', () => {
    const dir = tmp();
    const file = path.join(dir, 'wedvault.json');
    writeFileSync(file, JSON.stringify({ targets: [{ name: 'x', type: 's3' }] }));
    let err: unknown;
    try {
      loadConfig({
        WEDVAULT_CONFIG: file,
        WEDVAULT_DATA_DIR: dir,
        WEDVAULT_FILES_DIR: path.join(dir, 'files'),
        WEDVAULT_MASTER_KEY: 'a'.repeat(64),
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/targets\.0\.bucket/);
  });

  it('reads targets, labels and policy from the config file', () => {
    const dir = tmp();
    const file = path.join(dir, 'wedvault.json');
    writeFileSync(
      file,
      JSON.stringify({
        targets: [
          { name: 'disk', type: 'local', path: dir },
          {
            name: 'offsite',
            type: 's3',
            bucket: 'b',
            labels: { media: 'object', location: 'eu', offsite: true },
          },
        ],
        policy: { targets: ['disk', 'offsite'] },
      }),
    );
    const c = loadConfig({
      WEDVAULT_CONFIG: file,
      WEDVAULT_DATA_DIR: dir,
      WEDVAULT_FILES_DIR: path.join(dir, 'files'),
      WEDVAULT_MASTER_KEY: 'a'.repeat(64),
    });
    expect(c.primaryTarget).toBe('disk');
    expect(c.targets[1]!.labels).toEqual({ media: 'object', location: 'eu', offsite: true });
    expect(c.masterKeyGenerated).toBe(false);
  });
});
