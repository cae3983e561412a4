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
