import { describe, expect, it } from 'vitest';
import { tenancyOverridesSchema } from '../../src/config/schema.js';
import {
  classifyTenancy,
  describeTenancy,
  type TenancySettings,
  type TenancyTable,
} from '../../src/engine/postgres/tenancy.js';
import { ConfigError } from '../../src/errors.js';

/** `app.t(a!, b)` style: columns with `!` are NOT NULL; keys as [name, columns, target, target columns]. */
function table(
  qualified: string,
  cols: string,
  fks: [string, string[], string, string[]?][] = [],
  partitionOf?: string,
): TenancyTable {
  const split = (q: string) => {
    const [schema, name] = q.split('.') as [string, string];
    return { schema, name };
  };
  return {
    ...split(qualified),
    columns: cols.split(',').map((c) => ({ name: c.trim().replace('!', ''), notNull: c.includes('!') })),
    primaryKey: [cols.split(',')[0]!.trim().replace('!', '')],
    partitionOf: partitionOf ? split(partitionOf) : undefined,
    foreignKeys: fks.map(([name, columns, to, toColumns]) => ({
      name,
      columns,
      references: split(to),
      referencedColumns: toColumns ?? columns,
    })),
  };
}

const settings: TenancySettings = {
  tenantColumn: 'wedding_id',
  supplierColumn: 'supplier_id',
  tenantTable: { schema: 'app', table: 'Weddings' },
};
const classify = (tables: TenancyTable[], s: Partial<TenancySettings> = {}) =>
  Object.fromEntries(
    classifyTenancy(tables, { ...settings, ...s }).map((r) => [`${r.schema}.${r.name}`, describeTenancy(r)]),
  );
const overrides = (o: unknown) => tenancyOverridesSchema.parse(o);

const weddings = table('app.Weddings', 'id!, title');
const guests = table('app.guests', 'guest_id!, wedding_id!', [
  ['guests_wedding_fkey', ['wedding_id'], 'app.Weddings', ['id']],
]);

describe('tenancy from foreign keys', () => {
  it('follows NOT NULL keys over several hops to the tenant column', () => {
    const answers = table('app.rsvp_answers', 'answer_id!, guest_id!', [
      ['rsvp_answers_guest_id_fkey', ['guest_id'], 'app.guests'],
    ]);
    const notes = table('app.answer_notes', 'note_id!, answer_id!', [
      ['answer_notes_answer_fkey', ['answer_id'], 'app.rsvp_answers'],
    ]);
    expect(classify([weddings, guests, answers, notes])).toEqual({
      'app.Weddings': 'wedding (id)',
      'app.guests': 'wedding (wedding_id)',
      'app.rsvp_answers': 'wedding via rsvp_answers_guest_id_fkey → app.guests.wedding_id',
      'app.answer_notes':
        'wedding via answer_notes_answer_fkey → rsvp_answers_guest_id_fkey → app.guests.wedding_id',
    });
  });

  it('ends at the weddings table itself, quoted as PostgreSQL prints it', () => {
    const tables = table('app.tables', 'table_id!, wedding_ref!', [
      ['tables_w_fkey', ['wedding_ref'], 'app.Weddings', ['id']],
    ]);
    expect(classify([weddings, tables])['app.tables']).toBe('wedding via tables_w_fkey → app."Weddings".id');
  });

  it('takes the shortest path, and the first constraint name among equals', () => {
    const seat = table('app.seats', 'seat_id!, guest_id!, guest2_id!, table_id!', [
      ['seats_z_fkey', ['guest_id'], 'app.guests'],
      ['seats_a_fkey', ['guest2_id'], 'app.guests'],
      ['seats_far_fkey', ['table_id'], 'app.far'],
    ]);
    const far = table('app.far', 'far_id!, guest_id!', [['far_fkey', ['guest_id'], 'app.guests']]);
    expect(classify([weddings, guests, seat, far])['app.seats']).toBe(
      'wedding via seats_a_fkey → app.guests.wedding_id',
    );
    expect(
      classify([weddings, guests, far, { ...seat, foreignKeys: seat.foreignKeys.reverse() }])['app.seats'],
    ).toBe('wedding via seats_a_fkey → app.guests.wedding_id');
  });

  it('needs every column of a composite key NOT NULL; else the table is mixed', () => {
    const parent = table('app.parties', 'party_id!, wedding_id!');
    const strict = table('app.members', 'member_id!, party_id!, wedding_key!', [
      ['members_party_fkey', ['party_id', 'wedding_key'], 'app.parties', ['party_id', 'wedding_id']],
    ]);
    const loose = table('app.visitors', 'visitor_id!, party_id!, wedding_key', [
      ['visitors_party_fkey', ['party_id', 'wedding_key'], 'app.parties', ['party_id', 'wedding_id']],
    ]);
    const out = classify([parent, strict, loose]);
    expect(out['app.members']).toBe('wedding via members_party_fkey → app.parties.wedding_id');
    expect(out['app.visitors']).toBe(
      'mixed (wedding where set) via visitors_party_fkey → app.parties.wedding_id',
    );
  });

  it('a nullable key makes a mixed table, and what hangs on it stays mixed', () => {
    const photos = table('public.photos', 'photo_id!, guest_id', [
      ['photos_guest_fkey', ['guest_id'], 'app.guests'],
    ]);
    const tags = table('public.tags', 'tag_id!, photo_id!', [
      ['tags_photo_fkey', ['photo_id'], 'public.photos'],
    ]);
    const r = classifyTenancy([weddings, guests, photos, tags], settings);
    expect(r.find((x) => x.name === 'photos')).toMatchObject({ class: 'mixed', tenant: 'wedding' });
    expect(r.find((x) => x.name === 'tags')).toMatchObject({ class: 'mixed', tenant: 'wedding' });
    expect(r.find((x) => x.name === 'tags')!.path.map((h) => h.constraint)).toEqual([
      'tags_photo_fkey',
      'photos_guest_fkey',
    ]);
  });

  it('a cycle alone reaches no tenant; one member reaching a tenant carries the others', () => {
    const a = table('public.a', 'a_id!, b_id!', [['a_b_fkey', ['b_id'], 'public.b']]);
    const b = table('public.b', 'b_id!, a_id!', [['b_a_fkey', ['a_id'], 'public.a']]);
    expect(classify([a, b])).toEqual({ 'public.a': 'platform', 'public.b': 'platform' });
    const b2 = table('public.b', 'b_id!, a_id!, guest_id!', [
      ['b_a_fkey', ['a_id'], 'public.a'],
      ['b_guest_fkey', ['guest_id'], 'app.guests'],
    ]);
    const out = classify([weddings, guests, a, b2]);
    expect(out['public.b']).toBe('wedding via b_guest_fkey → app.guests.wedding_id');
    expect(out['public.a']).toBe('wedding via a_b_fkey → b_guest_fkey → app.guests.wedding_id');
  });

  it('a self-reference neither makes nor breaks a class', () => {
    const alone = table('public.tree', 'node_id!, parent_id!', [
      ['tree_parent_fkey', ['parent_id'], 'public.tree', ['node_id']],
    ]);
    expect(classify([alone])['public.tree']).toBe('platform');
    const guestTree = table('app.plus_ones', 'guest_id!, host_id!, invited_by!', [
      ['plus_ones_self_fkey', ['invited_by'], 'app.plus_ones', ['guest_id']],
      ['plus_ones_host_fkey', ['host_id'], 'app.guests', ['guest_id']],
    ]);
    expect(classify([weddings, guests, guestTree])['app.plus_ones']).toBe(
      'wedding via plus_ones_host_fkey → app.guests.wedding_id',
    );
  });

  it('a table reaching both tenants follows the wedding unless overridden', () => {
    const suppliers = table('public.suppliers', 'supplier_id!');
    const bookings = table('public.bookings', 'booking_id!, guest_id!, vendor!', [
      ['bookings_vendor_fkey', ['vendor'], 'public.suppliers', ['supplier_id']],
      ['bookings_guest_fkey', ['guest_id'], 'app.guests'],
    ]);
    const all = [weddings, guests, suppliers, bookings];
    expect(classify(all)['public.suppliers']).toBe('supplier (supplier_id)');
    expect(classify(all)['public.bookings']).toBe('wedding via bookings_guest_fkey → app.guests.wedding_id');
    const over = overrides({ 'public.bookings': { via: 'bookings_vendor_fkey' } });
    expect(classify(all, { overrides: over })['public.bookings']).toBe(
      'supplier via bookings_vendor_fkey → public.suppliers.supplier_id, by override',
    );
  });

  it('every partition takes its parent’s class, whatever its own keys say', () => {
    const events = table('app.events', 'event_id!, guest_id!', [
      ['events_guest_fkey', ['guest_id'], 'app.guests'],
    ]);
    const y2026 = table('app.events_2026', 'event_id!, guest_id!', [], 'app.events');
    const sub = table('app.events_2026_q1', 'event_id!, guest_id!', [], 'app.events_2026');
    const out = classify([weddings, guests, events, y2026, sub]);
    for (const t of ['app.events', 'app.events_2026', 'app.events_2026_q1'])
      expect(out[t], t).toBe('wedding via events_guest_fkey → app.guests.wedding_id');
    expect(
      classify([weddings, guests, events, y2026, sub], {
        overrides: overrides({ 'app.events': 'platform' }),
      })['app.events_2026_q1'],
    ).toBe('platform, by override');
  });

  it('overrides: platform for any table, via a named key, and errors naming what is wrong', () => {
    const settingsT = table('public.settings', 'key!, wedding_id');
    const answers = table('app.rsvp_answers', 'answer_id!, guest_id, other!', [
      ['rsvp_answers_guest_id_fkey', ['guest_id'], 'app.guests'],
      ['rsvp_answers_other_fkey', ['other'], 'public.settings', ['key']],
    ]);
    const all = [weddings, guests, settingsT, answers];
    const over = overrides({
      'app.rsvp_answers': { via: 'rsvp_answers_guest_id_fkey' },
      'public.settings': 'platform',
    });
    const out = classify(all, { overrides: over });
    expect(out['public.settings']).toBe('platform, by override');
    // without the override the NOT NULL key to settings would have made it wedding-scoped
    expect(classify(all)['app.rsvp_answers']).toBe(
      'wedding via rsvp_answers_other_fkey → public.settings.wedding_id',
    );
    expect(out['app.rsvp_answers']).toBe(
      'mixed (wedding where set) via rsvp_answers_guest_id_fkey → app.guests.wedding_id, by override',
    );
    const fail = (o: unknown) => () => classifyTenancy(all, { ...settings, overrides: overrides(o) });
    expect(fail({ 'app.nope': 'platform' })).toThrow(ConfigError);
    expect(fail({ 'app.nope': 'platform' })).toThrow('"app.nope": no such table');
    expect(fail({ 'app.rsvp_answers': { via: 'missing_fkey' } })).toThrow(
      'no foreign key "missing_fkey" on app.rsvp_answers',
    );
    expect(
      fail({ 'app.rsvp_answers': { via: 'rsvp_answers_other_fkey' }, 'public.settings': 'platform' }),
    ).toThrow('"app.rsvp_answers": rsvp_answers_other_fkey does not reach');
  });

  it('quoted override names match mixed-case tables', () => {
    const over = overrides({ 'app."Weddings"': 'platform' });
    expect(over[0]!.table).toEqual({ schema: 'app', table: 'Weddings' });
    expect(classify([weddings, guests], { overrides: over })['app.Weddings']).toBe('platform, by override');
    expect(() => overrides({ 'a.b.c': 'platform' })).toThrow();
    expect(() => overrides({ 'app.x': 'wedding' })).toThrow();
  });
});
