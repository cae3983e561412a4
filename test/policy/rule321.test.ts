import { describe, expect, it } from 'vitest';
import { evaluate321, type TargetLabels } from '../../src/policy/rule321.js';

const labels = new Map<string, TargetLabels>([
  ['disk', { media: 'disk', location: 'dc1', offsite: false }],
  ['disk2', { media: 'disk', location: 'dc1', offsite: false }],
  ['s3', { media: 'object', location: 'eu-west', offsite: true }],
  ['azure', { media: 'object', location: 'us-east', offsite: true }],
]);

describe('3-2-1 evaluation', () => {
  it('meets the rule with three verified copies on two media, one offsite', () => {
    const r = evaluate321(
      [
        { target: 'disk', state: 'verified' },
        { target: 's3', state: 'verified' },
        { target: 'azure', state: 'verified' },
      ],
      labels,
      ['disk', 's3', 'azure'],
    );
    expect(r).toMatchObject({
      meets321: true,
      copies: 3,
      media: ['disk', 'object'],
      offsite: 2,
      missing: [],
    });
  });

  it('says why it fails: copies, media and offsite', () => {
    const r = evaluate321(
      [
        { target: 'disk', state: 'verified' },
        { target: 'disk2', state: 'verified' },
      ],
      labels,
      ['disk', 'disk2'],
    );
    expect(r.meets321).toBe(false);
    expect(r.reason321).toBe('2 copies of 3; media: disk only; no offsite copy');
  });

  it('counts only verified copies and names the policy targets without one', () => {
    const r = evaluate321(
      [
        { target: 'disk', state: 'verified' },
        { target: 's3', state: 'replicated' },
        { target: 'azure', state: 'failed' },
      ],
      labels,
      ['disk', 's3', 'azure'],
    );
    expect(r.copies).toBe(1);
    expect(r.reason321).toBe('1 copy of 3; media: disk only; no offsite copy; not verified on: s3, azure');
  });

  it('does not count a copy on a target that lost its data (unverified)', () => {
    const r = evaluate321(
      [
        { target: 'disk', state: 'verified' },
        { target: 's3', state: 'unverified' },
        { target: 'azure', state: 'verified' },
      ],
      labels,
      ['disk', 's3', 'azure'],
    );
    expect(r.copies).toBe(2);
    expect(r.missing).toEqual(['s3']);
  });

  it('ignores copies on targets that are no longer configured', () => {
    const r = evaluate321([{ target: 'gone', state: 'verified' }], labels, []);
    expect(r.copies).toBe(0);
    expect(r.reason321).toContain('media: none');
  });
});
