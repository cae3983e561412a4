import { execFile } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..', '..');

// A checkout in miniature: bin/wedvault.mjs beside a build and sources that say which one ran.
let dir: string;
const launch = async () => (await run('node', [path.join(dir, 'bin', 'wedvault.mjs')])).stdout.trim();
const at = (file: string, seconds: number) => utimesSync(path.join(dir, file), seconds, seconds);

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'wedvault-launcher-'));
  for (const d of ['bin', 'dist/cli', 'src/cli', 'src/engine'])
    mkdirSync(path.join(dir, d), { recursive: true });
  copyFileSync(path.join(ROOT, 'bin', 'wedvault.mjs'), path.join(dir, 'bin', 'wedvault.mjs'));
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}');
  writeFileSync(path.join(dir, 'dist', 'cli', 'index.js'), "console.log('build');\n");
  writeFileSync(
    path.join(dir, 'src', 'cli', 'index.ts'),
    "const from: string = 'sources';\nconsole.log(from);\n",
  );
  writeFileSync(path.join(dir, 'src', 'engine', 'x.ts'), 'export {};\n');
  writeFileSync(path.join(dir, 'dist', '.built'), '');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('runs the build while no source is newer than it, the sources through tsx otherwise', async () => {
  // folders count too: a file added or removed after the build changes its folder's time
  for (const f of ['src/cli', 'src/engine', 'src/cli/index.ts', 'src/engine/x.ts']) at(f, 1_000);
  at('dist/.built', 2_000);
  expect(await launch()).toBe('build');
  // an edit anywhere under src/ after the build: the build is stale
  at('src/engine/x.ts', 3_000);
  expect(await launch()).toBe('sources');
  at('src/engine/x.ts', 1_000);
  writeFileSync(path.join(dir, 'src', 'engine', 'y.ts'), 'export {};\n');
  at('src/engine/y.ts', 1_000);
  expect(await launch()).toBe('sources');
  at('src/engine', 1_000);
  expect(await launch()).toBe('build');
  // no build at all
  rmSync(path.join(dir, 'dist', '.built'));
  expect(await launch()).toBe('sources');
});
