import { expect, it } from 'vitest';
import { childConnection } from '../../src/engine/postgres/catalog.js';

it('keeps passwords off child command lines and hands them over in the environment', () => {
  const c = childConnection('postgres://wedvault:s%40cret@db.internal:5432/weddings?sslmode=require');
  expect(c.url).toBe('postgres://wedvault@db.internal:5432/weddings?sslmode=require');
  expect(c.url).not.toContain('cret');
  expect(c.env.PGPASSWORD).toBe('s@cret');
  expect(childConnection('postgres://postgres@127.0.0.1/x').env.PGPASSWORD).toBe(process.env.PGPASSWORD);
});
