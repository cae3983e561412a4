import { expect, it } from 'vitest';
import { ceremonyColumnSchema, postgresSourceSchema } from '../../src/config/schema.js';

it('parses the ceremony setting once into schema, table and column', () => {
  expect(ceremonyColumnSchema.parse('weddings.wedding_date')).toEqual({
    table: 'weddings',
    column: 'wedding_date',
  });
  expect(ceremonyColumnSchema.parse('crm.weddings.date')).toEqual({
    schema: 'crm',
    table: 'weddings',
    column: 'date',
  });
  expect(postgresSourceSchema.parse({}).ceremonyDate).toEqual({ table: 'weddings', column: 'wedding_date' });
});

it('refuses settings that are not [schema.]table.column', () => {
  for (const bad of ['weddings', 'a.b.c.d', 'weddings.', '1x.date', 'weddings.date;drop'])
    expect(ceremonyColumnSchema.safeParse(bad).success, bad).toBe(false);
});

it('reads quoted and mixed-case names the way PostgreSQL does', () => {
  expect(ceremonyColumnSchema.parse('app."Weddings"."Ceremony Date"')).toEqual({
    schema: 'app',
    table: 'Weddings',
    column: 'Ceremony Date',
  });
  // unquoted names fold to lower case; "" inside quotes is one quote
  expect(ceremonyColumnSchema.parse('CRM."a""b".Date')).toEqual({
    schema: 'crm',
    table: 'a"b',
    column: 'date',
  });
  for (const bad of ['app."Weddings', 'app."".date', '"w"x.date', 'app . w.date'])
    expect(ceremonyColumnSchema.safeParse(bad).success, bad).toBe(false);
});

it('names the tenancy overrides’ tables with the same parser', () => {
  const { tenancy } = postgresSourceSchema.parse({
    tenancy: { 'app."Weddings"': 'platform', rsvp_answers: { via: 'rsvp_answers_guest_id_fkey' } },
  });
  expect(tenancy).toEqual([
    { key: 'app."Weddings"', table: { schema: 'app', table: 'Weddings' }, rule: 'platform' },
    { key: 'rsvp_answers', table: { table: 'rsvp_answers' }, rule: { via: 'rsvp_answers_guest_id_fkey' } },
  ]);
  for (const bad of [
    { 'a.b.c': 'platform' },
    { t: 'wedding' },
    { t: { via: '' } },
    { t: { via: 'x', extra: 1 } },
  ])
    expect(postgresSourceSchema.safeParse({ tenancy: bad }).success, JSON.stringify(bad)).toBe(false);
});

it('reads the tenant and supplier columns and the excluded tables with the same parser', () => {
  const c = postgresSourceSchema.parse({
    tenantKey: '"Wedding ID"',
    supplierKey: 'Supplier_Id',
    excludeTables: ['audit_log', 'app."Big Table"'],
  });
  expect(c.tenantKey).toBe('Wedding ID');
  expect(c.supplierKey).toBe('supplier_id');
  expect(c.excludeTables).toEqual([{ table: 'audit_log' }, { schema: 'app', table: 'Big Table' }]);
  expect(postgresSourceSchema.parse({}).tenantKey).toBe('wedding_id');
  expect(postgresSourceSchema.safeParse({ tenantKey: 'a.b' }).success).toBe(false);
  expect(postgresSourceSchema.safeParse({ excludeTables: ['a.b.c'] }).success).toBe(false);
});
