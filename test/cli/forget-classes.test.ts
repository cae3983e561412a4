// `wedvault forget --dry-run` lists the data classes a purge would expire, and those a hold blocks.
import { expect, it } from 'vitest';
import { formatClassExpiries } from '../../src/cli/forget.js';
import type { ExpiryVerdict } from '../../src/policy/class-expiry.js';

const verdict = (
  weddingId: string,
  action: ExpiryVerdict['action'],
  hold?: ExpiryVerdict['hold'],
): ExpiryVerdict => ({
  weddingId,
  dataClass: 'guest-pii',
  scope: `wedding:${weddingId}/guest-pii`,
  expiresAt: new Date('2026-08-30T00:00:00Z'),
  rule: 'wedding + 90d',
  action,
  ...(hold ? { hold } : {}),
});

it('prints the expiries due and the held ones, not those pending or done', () => {
  const run = {
    verdicts: [
      verdict('1', 'expire'),
      verdict('2', 'held', { id: 'h1', reason: 'dispute' }),
      verdict('3', 'pending'),
      verdict('4', 'done'),
    ],
    expired: [],
  };
  expect(formatClassExpiries(run, true)).toEqual([
    'data classes:',
    'expire  wedding:1/guest-pii  wedding + 90d passed 2026-08-30  (would expire: its key destroyed on every target)',
    'held    wedding:2/guest-pii  wedding + 90d passed 2026-08-30  (hold h1: dispute)',
  ]);
  expect(formatClassExpiries({ verdicts: [verdict('3', 'pending')], expired: [] }, true)).toEqual([]);
});
