// retention.classes in the config file: parsed at start-up into classes with their tables (quoted
// names as PostgreSQL reads them), file patterns and keep rule; a bad one refused naming the field.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function load(retention: unknown) {
  const dir = mkdtempSync(path.join(tmpdir(), 'wv-classes-config-'));
  dirs.push(dir);
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ retention }));
  return loadConfig({ WEDVAULT_CONFIG: file, WEDVAULT_DATA_DIR: dir, WEDVAULT_MASTER_KEY: 'a'.repeat(64) });
}

it('has no classes by default', () => {
  expect(load({}).retention.classes).toBeUndefined();
});

it('parses each class’s tables, files and keep rule', () => {
  const { classes } = load({
    classes: {
      'guest-pii': {
        tables: ['public.guests', 'app."DietaryNotes"'],
        files: ['weddings/*/guests/**'],
        keep: 'wedding + 90d',
      },
      finance: { tables: ['payments'], keep: 'wedding+7y' },
    },
  }).retention;
  expect(classes).toEqual([
    {
      name: 'guest-pii',
      tables: [
        { schema: 'public', table: 'guests' },
        { schema: 'app', table: 'DietaryNotes' },
      ],
      files: ['weddings/*/guests/**'],
      keep: { from: 'wedding', after: { years: 0, months: 0, days: 90, hours: 0 }, text: 'wedding + 90d' },
    },
    {
      name: 'finance',
      tables: [{ table: 'payments' }],
      files: [],
      keep: { from: 'wedding', after: { years: 7, months: 0, days: 0, hours: 0 }, text: 'wedding+7y' },
    },
  ]);
});

it.each([
  [{ x: { keep: 'wedding + soon' } }, /retention\.classes\.x\.keep: expected "wedding \+ <duration>"/],
  [
    { x: { keep: '30 days' } },
    /retention\.classes\.x\.keep: expected "wedding \+ <duration>" or "<duration>"/,
  ],
  [
    { x: { tables: ['a.b.c'], keep: 'wedding + 1y' } },
    /retention\.classes\.x\.tables\.0: expected table or schema\.table/,
  ],
  [{ X: { keep: 'wedding + 1y' } }, /retention\.classes\.X: /],
  [{ x: { keep: 'wedding + 1y', media: [] } }, /retention\.classes\.x/],
  [
    { a: { tables: ['guests'], keep: 'wedding + 1y' }, b: { tables: ['app.guests'], keep: 'wedding + 2y' } },
    /retention\.classes\.b\.tables\.0: table app\.guests is already in class a/,
  ],
])('refuses %j at start-up, naming the field', (classes, message) => {
  expect(() => load({ classes })).toThrow(ConfigError);
  expect(() => load({ classes })).toThrow(message);
});
