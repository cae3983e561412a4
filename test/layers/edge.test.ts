// The service edge's rules, read from the source: jobs are added only by producers, catalog SQL only in
// src/catalog, and the catalog does not import the engine.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '..', '..', 'src');
const files = readdirSync(SRC, { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.ts'))
  .map((f) => ({ file: f.split(path.sep).join('/'), text: readFileSync(path.join(SRC, f), 'utf8') }));

/** `file:line` of every line matching `pattern` in files outside the allowed folders. */
function offenders(pattern: RegExp, allowed: (file: string) => boolean): string[] {
  return files
    .filter((f) => !allowed(f.file))
    .flatMap((f) =>
      f.text.split('\n').flatMap((line, i) => (pattern.test(line) ? [`${f.file}:${i + 1}`] : [])),
    );
}

it('the walk sees the source tree', () => {
  expect(files.length).toBeGreaterThan(50);
  expect(files.some((f) => f.file === 'producers/backups.ts')).toBe(true);
});

it('jobs are added only in src/producers', () => {
  // a queue's add, addBulk, a flow's add, a job scheduler
  const adds = /\.add\(\s*(JOBS\.|\{\s*name:|$)|\baddBulk\(|\bflow\.add\(|\bupsertJobScheduler\(/;
  expect(offenders(adds, (f) => f.startsWith('producers/'))).toEqual([]);
  expect(offenders(adds, () => false).length).toBeGreaterThanOrEqual(5);
});

it('SQL runs only in src/catalog (the engine, the seed and the ceremony lookup query the source database)', () => {
  const sql = /\.query(<[^>]*>)?\(/;
  const source = (f: string) =>
    f.startsWith('catalog/') ||
    f.startsWith('engine/') ||
    f.startsWith('seed/') ||
    f.endsWith('/ceremony.ts');
  expect(offenders(sql, source)).toEqual([]);
  expect(offenders(sql, () => false).length).toBeGreaterThan(20);
});

it('the catalog imports nothing of the engine', () => {
  expect(offenders(/from '\.\.\/engine\//, (f) => !f.startsWith('catalog/'))).toEqual([]);
});
