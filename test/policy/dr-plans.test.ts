import { describe, expect, it } from 'vitest';
import { buildPlan, SCENARIOS, type PlanInput } from '../../src/policy/dr-plans.js';

const input = (over: Partial<PlanInput> = {}): PlanInput => ({
  primaryTarget: 's3',
  targets: [
    { name: 's3', location: 'eu-west', healthy: true },
    { name: 'gcs', location: 'eu-west', healthy: true },
    { name: 'azure', location: 'us-east', healthy: true },
  ],
  points: [
    {
      id: 'p1',
      time: '2026-01-01T00:00:00.000Z',
      type: 'full',
      bytes: 1000,
      targets: ['s3', 'azure'],
      verified: true,
    },
    {
      id: 'p2',
      time: '2026-01-02T00:00:00.000Z',
      type: 'full',
      bytes: 2000,
      targets: ['s3', 'gcs'],
      verified: true,
    },
    { id: 'f3', time: '2026-01-02T12:00:00.000Z', type: 'files', bytes: 10, targets: ['s3'], verified: true },
    {
      id: 'p4',
      time: '2026-01-03T00:00:00.000Z',
      type: 'full',
      bytes: 4000,
      targets: ['s3'],
      verified: false,
    },
  ],
  now: new Date('2026-01-04T00:00:00Z'),
  ...over,
});

describe('disaster-recovery plans', () => {
  it('has one built-in plan per scenario, each with ordered steps', () => {
    for (const s of SCENARIOS) {
      const p = buildPlan(s, input(), { weddingId: '42' });
      expect(p.id).toBe(s);
      expect(p.builtIn).toBe(true);
      expect(p.steps.map((x) => x.n)).toEqual(p.steps.map((_, i) => i + 1));
      expect(p.steps.length).toBeGreaterThanOrEqual(2);
    }
  });

  it('database lost: newest database point, primary first, recovered then validated', () => {
    const p = buildPlan('database-lost', input());
    expect(p.copies).toEqual(['s3', 'gcs', 'azure']);
    expect(p.point?.id).toBe('p4');
    expect(p.steps.map((s) => s.action)).toEqual([
      'choose-point',
      'recover-to-target',
      'validate',
      'repoint-application',
    ]);
  });

  it('primary target lost: only the other copies, and the newest point they hold', () => {
    const p = buildPlan('primary-target-lost', input());
    expect(p.copies).toEqual(['gcs', 'azure']);
    expect(p.point?.id).toBe('p2');
    expect(p.steps[0]).toMatchObject({ action: 'failover' });
  });

  it('region lost: every target with that location label is left out', () => {
    const p = buildPlan('region-lost', input(), { region: 'eu-west' });
    expect(p.copies).toEqual(['azure']);
    expect(p.point?.id).toBe('p1');
    const none = buildPlan(
      'region-lost',
      input({ targets: [{ name: 's3', location: 'eu-west', healthy: true }] }),
    );
    expect(none.warnings.join()).toMatch(/every target is in location eu-west/);
  });

  it('corruption: the newest point verified clean before the time', () => {
    expect(buildPlan('corruption', input()).point?.id).toBe('p2');
    expect(buildPlan('corruption', input(), { before: '2026-01-01T12:00:00Z' }).point?.id).toBe('p1');
    expect(buildPlan('corruption', input()).steps[0]!.action).toBe('stop-writes');
  });

  it('wedding deleted: merged as of one second before the deletion', () => {
    const p = buildPlan('wedding-deleted', input(), { weddingId: '42', deletedAt: '2026-01-02T14:03:27Z' });
    expect(p.targetTime).toBe('2026-01-02T14:03:26.000Z');
    expect(p.point?.id).toBe('p2');
    expect(p.steps.map((s) => s.action)).toEqual(['choose-point', 'merge-wedding', 'validate']);
    expect(p.steps[1]!.text).toContain('wedding 42');
  });

  it('catalog lost: rebuilt from any one copy', () => {
    const p = buildPlan('catalog-lost', input());
    expect(p.steps[0]).toMatchObject({ action: 'rebuild-catalog' });
    expect(p.warnings).toEqual([]);
  });

  it('estimates RTO from the last drill’s throughput, and says when there is none', () => {
    expect(buildPlan('database-lost', input()).rto).toEqual({
      estimateS: null,
      basis: expect.stringMatching(/no drill/),
    });
    const p = buildPlan('database-lost', input({ lastDrill: { rtoS: 10, bytes: 1000 } }));
    expect(p.rto.estimateS).toBe(40); // 4000 bytes at 100 B/s
    expect(buildPlan('database-lost', input({ lastDrill: { rtoS: 7.2, bytes: null } })).rto.estimateS).toBe(
      8,
    );
  });
});
