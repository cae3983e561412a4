// When a wedding's data classes expire and what a purge may carry out: pure, with a fixed clock.
import { expect, it } from 'vitest';
import type { DataClass } from '../../src/config/index.js';
import { after, classExpiries, judgeExpiries } from '../../src/policy/class-expiry.js';

const rule = (text: string, after: Partial<DataClass['keep']['after']>) => ({
  from: 'wedding' as const,
  after: { years: 0, months: 0, days: 0, hours: 0, ...after },
  text,
});
const classes: DataClass[] = [
  { name: 'guest-pii', tables: [], files: [], keep: rule('wedding + 90d', { days: 90 }) },
  { name: 'finance', tables: [], files: [], keep: rule('wedding + 7y', { years: 7 }) },
];
const tenants = [
  { id: '1', ceremonyDate: '2026-06-01' },
  { id: '2', ceremonyDate: '2024-02-29' },
  { id: '3', ceremonyDate: null },
];

it('adds calendar durations: a month from 31 January is 3 March, seven years from 29 February is 1 March', () => {
  expect(after(new Date('2026-01-31T00:00:00Z'), rule('', { months: 1 }).after)).toEqual(
    new Date('2026-03-03T00:00:00Z'),
  );
  expect(after(new Date('2024-02-29T00:00:00Z'), rule('', { years: 7 }).after)).toEqual(
    new Date('2031-03-01T00:00:00Z'),
  );
});

it('dates every wedding × class from the ceremony, soonest first; a wedding without a date never expires', () => {
  expect(
    classExpiries(classes, tenants).map((e) => [e.scope, e.expiresAt.toISOString().slice(0, 10)]),
  ).toEqual([
    ['wedding:2/guest-pii', '2024-05-29'],
    ['wedding:1/guest-pii', '2026-08-30'],
    ['wedding:2/finance', '2031-03-01'],
    ['wedding:1/finance', '2033-06-01'],
  ]);
});

it('judges each expiry: done when the ledger covers it, pending before its day, held by a hold, else expire', () => {
  const expiries = classExpiries(classes, tenants);
  const judge = (holds: Parameters<typeof judgeExpiries>[1]['holds'], erased: string[] = []) =>
    judgeExpiries(expiries, {
      now: new Date('2026-09-01T00:00:00Z'),
      holds,
      pointWeddings: new Map([
        ['p-with-1', ['1']],
        ['p-unreadable', undefined],
      ]),
      erased: new Set(erased),
    }).map((v) => `${v.scope} ${v.action}${v.hold ? ` ${v.hold.id}` : ''}`);
  expect(judge([])).toEqual([
    'wedding:2/guest-pii expire',
    'wedding:1/guest-pii expire',
    'wedding:2/finance pending',
    'wedding:1/finance pending',
  ]);
  // erasing the whole wedding covers its classes; a class already expired is done
  expect(judge([], ['wedding:2', 'wedding:1/guest-pii']).slice(0, 2)).toEqual([
    'wedding:2/guest-pii done',
    'wedding:1/guest-pii done',
  ]);
  const hold = (id: string, weddingId: string | null, recoveryPointId: string | null) => ({
    id,
    reason: 'dispute',
    weddingId,
    recoveryPointId,
  });
  expect(judge([hold('h1', '1', null)]).slice(0, 2)).toEqual([
    'wedding:2/guest-pii expire',
    'wedding:1/guest-pii held h1',
  ]);
  expect(judge([hold('h2', null, 'p-with-1')]).slice(0, 2)).toEqual([
    'wedding:2/guest-pii expire',
    'wedding:1/guest-pii held h2',
  ]);
  // a held point whose weddings no copy could tell holds every wedding
  expect(judge([hold('h3', null, 'p-unreadable')]).slice(0, 2)).toEqual([
    'wedding:2/guest-pii held h3',
    'wedding:1/guest-pii held h3',
  ]);
});
