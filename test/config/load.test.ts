// The `load` section and the targets' shared limits: defaults, and a start-up refusal naming the field.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';

const dir = mkdtempSync(path.join(tmpdir(), 'wv-load-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(file: object) {
  const f = path.join(dir, 'config.json');
  writeFileSync(f, JSON.stringify(file));
  return loadConfig({
    WEDVAULT_CONFIG: f,
    WEDVAULT_DATA_DIR: path.join(dir, 'data'),
    WEDVAULT_FILES_DIR: path.join(dir, 'files'),
    WEDVAULT_KEY_FILE: path.join(dir, 'keys', 'master.key'),
  });
}

it('has defaults: guard off, aging on, backpressure past 5,000 waiting jobs, event triggers off', () => {
  const c = load({});
  expect(c.load.guard).toEqual({ checks: [], retrySeconds: 60, cacheSeconds: 5 });
  expect(c.load.aging).toEqual({ boundMinutes: {}, sweepSeconds: 30 });
  expect(c.load.backpressure).toEqual({
    maxDepth: 5_000,
    tiers: ['later', 'maintenance'],
    deferSeconds: 300,
  });
  expect(c.load.events).toMatchObject({ rows: 0, megabytes: 0, slot: 'wedvault_events' });
});

it('reads a full section and the targets’ MB/s', () => {
  const c = load({
    targets: [{ name: 'nas', type: 'local', path: dir, rateLimit: 50, mbPerSecond: 20, concurrency: 4 }],
    load: {
      guard: {
        maxActiveConnections: 40,
        maxReplicationLagSeconds: 30,
        checks: [{ sql: 'SELECT 1', max: 0 }],
      },
      aging: { boundMinutes: { later: 720 } },
      events: { rows: 500, megabytes: 100 },
    },
  });
  expect(c.targets[0]).toMatchObject({ rateLimit: 50, mbPerSecond: 20, concurrency: 4 });
  expect(c.load.guard.checks).toEqual([{ name: 'custom', sql: 'SELECT 1', max: 0 }]);
  expect(c.load.aging.boundMinutes).toEqual({ later: 720 });
});

it.each([
  [{ load: { guard: { retrySeconds: -1 } } }, 'load.guard.retrySeconds'],
  [{ load: { guard: { maxActiveConnections: 2.5 } } }, 'load.guard.maxActiveConnections'],
  [{ load: { guard: { checks: [{ sql: 'SELECT 1; DROP TABLE x', max: 1 }] } } }, 'load.guard.checks.0.sql'],
  [
    {
      load: {
        guard: {
          checks: [
            { sql: 'SELECT 1', max: 1 },
            { sql: 'SELECT 2', max: 1 },
          ],
        },
      },
    },
    'load.guard.checks',
  ],
  [{ load: { aging: { boundMinutes: { someday: 5 } } } }, 'load.aging.boundMinutes'],
  [{ load: { aging: { boundMinutes: { later: 0 } } } }, 'load.aging.boundMinutes.later'],
  [{ load: { backpressure: { tiers: ['soon'] } } }, 'load.backpressure.tiers.0'],
  [{ load: { events: { slot: 'Bad-Slot' } } }, 'load.events.slot'],
  [{ load: { surprise: true } }, 'load'],
  [{ targets: [{ name: 't', type: 'local', path: '/x', mbPerSecond: -1 }] }, 'targets.0.mbPerSecond'],
])('refuses %j naming %s', (file, field) => {
  expect(() => load(file)).toThrow(ConfigError);
  expect(() => load(file)).toThrow(new RegExp(`${field.replace(/\./g, '\\.')}\\b`));
});
