import { expect, it } from 'vitest';
import { childConnection } from '../../src/engine/postgres/catalog.js';

it('keeps passwords off child command lines and hands them over in the environment', () => {
  const c = childConnection('postgres://wedvault:s%40cret@db.internal:5432/weddings?sslmode=require');
  expect(c.url).toBe('postgres://wedvault@db.internal:5432/weddings?sslmode=require');
  expect(c.url).not.toContain('cret');
  expect(c.env.PGPASSWORD).toBe('s@cret');
});

it('leaves a password given in the environment to a URL without one', () => {
  const before = process.env.PGPASSWORD;
  process.env.PGPASSWORD = 'from-the-environment';
  try {
    expect(childConnection('postgres://postgres@127.0.0.1/x').env.PGPASSWORD).toBe('from-the-environment');
    // a URL's own password wins, and only in the child's environment
    expect(childConnection('postgres://u:mine@127.0.0.1/x').env.PGPASSWORD).toBe('mine');
    expect(process.env.PGPASSWORD).toBe('from-the-environment');
  } finally {
    if (before === undefined) delete process.env.PGPASSWORD;
    else process.env.PGPASSWORD = before;
  }
});
