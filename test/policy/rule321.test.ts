import { describe, expect, it } from 'vitest';
import { evaluate321, type TargetLabels } from '../../src/policy/rule321.js';

const labels = new Map<string, TargetLabels>([
  ['disk', { media: 'disk', location: 'dc1', offsite: false }],
  ['disk2', { media: 'disk', location: 'dc1', offsite: false }],
  ['s3', { media: 'object', location: 'eu-west', offsite: true }],
  ['azure', { media: 'object', location: 'us-east', offsite: true }],
  ['disk-dr', { media: 'disk', location: 'dc2', offsite: true }],
  ['nas', { media: 'nas', location: 'dc1', offsite: false }],
]);

const verified = (...targets: string[]) => targets.map((target) => ({ target, state: 'verified' }));

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

  // Each rule on its own: three verified copies that break exactly one rule must fail on that rule alone.
  it('fails three copies on one medium, one offsite, on media alone', () => {
    const r = evaluate321(verified('disk', 'disk2', 'disk-dr'), labels, ['disk', 'disk2', 'disk-dr']);
    expect(r).toMatchObject({ meets321: false, copies: 3, media: ['disk'], offsite: 1, missing: [] });
    expect(r.reason321).toBe('media: disk only');
  });

  it('fails three copies on two media with none offsite, on offsite alone', () => {
    const r = evaluate321(verified('disk', 'disk2', 'nas'), labels, ['disk', 'disk2', 'nas']);
    expect(r).toMatchObject({ meets321: false, copies: 3, media: ['disk', 'nas'], offsite: 0, missing: [] });
    expect(r.reason321).toBe('no offsite copy');
  });

  it('fails two copies on two media, one offsite, on copies alone', () => {
    const r = evaluate321(verified('disk', 's3'), labels, ['disk', 's3']);
    expect(r).toMatchObject({ meets321: false, copies: 2, media: ['disk', 'object'], offsite: 1 });
    expect(r.reason321).toBe('2 copies of 3');
  });

  it('meets the rule with more than three copies and says so', () => {
    const r = evaluate321(verified('disk', 'disk2', 'nas', 'disk-dr'), labels);
    expect(r).toMatchObject({
      meets321: true,
      copies: 4,
      media: ['disk', 'nas'],
      offsite: 1,
      missing: ['s3', 'azure'],
    });
    expect(r.reason321).toBe('4 copies; media: disk, nas; 1 offsite');
  });
});
