import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { retentionSchema, type RetentionConfig } from '../../src/config/schema.js';
import {
  applyGfs,
  selectRetention,
  type RetentionHold,
  type RetentionPoint,
} from '../../src/policy/retention.js';

const NOW = new Date('2026-06-15T12:00:00Z');
const policy = (raw: unknown): RetentionConfig => retentionSchema.parse(raw);

/** One full database point a day at 02:00 for `days` days before NOW, newest first ids d0, d1, … */
function daily(days: number, extra: Partial<RetentionPoint> = {}): RetentionPoint[] {
  return Array.from({ length: days }, (_, i) => ({
    id: `d${i}`,
    time: new Date(Date.UTC(2026, 5, 15 - i, 2)),
    type: 'full',
    sources: ['database'] as const,
    ...extra,
  }));
}

const forgotten = (v: { id: string; action: string }[]) =>
  v.filter((x) => x.action === 'forget').map((x) => x.id);

describe('GFS selection', () => {
  it('keeps the newest point of each day while the count lasts', () => {
    const points = [
      { id: 'late', time: new Date('2026-06-15T10:00:00Z') },
      { id: 'early', time: new Date('2026-06-15T01:00:00Z') },
      { id: 'yday', time: new Date('2026-06-14T23:00:00Z') },
      { id: 'old', time: new Date('2026-06-10T23:00:00Z') },
    ];
    const kept = applyGfs(points, { keepDaily: 2 }, NOW);
    expect([...kept.keys()]).toEqual(['late', 'yday']);
    expect(kept.get('late')).toEqual(['daily']);
  });

  it('keeps the oldest point when a count is left over (restic)', () => {
    const points = [
      { id: 'a', time: new Date('2026-06-15T10:00:00Z') },
      { id: 'b', time: new Date('2026-06-15T09:00:00Z') },
    ];
    expect(Object.fromEntries(applyGfs(points, { keepDaily: 5 }, NOW))).toEqual({
      a: ['daily'],
      b: ['oldest daily'],
    });
  });

  it('counts ISO weeks, months and years in UTC', () => {
    // 2026-01-01 is a Thursday: ISO week 1 of 2026; 2025-12-29 (Monday) is in it too
    const points = [
      { id: 'thu', time: new Date('2026-01-01T00:30:00Z') },
      { id: 'mon', time: new Date('2025-12-29T00:30:00Z') },
      { id: 'sun', time: new Date('2025-12-28T23:30:00Z') },
    ];
    expect([...applyGfs(points, { keepWeekly: 2 }, NOW).keys()]).toEqual(['thu', 'sun']);
    expect([...applyGfs(points, { keepMonthly: 2 }, NOW).keys()]).toEqual(['thu', 'mon']);
    expect([...applyGfs(points, { keepYearly: 1 }, NOW).keys()]).toEqual(['thu']);
  });

  it('keepWithin measures from now, in calendar units', () => {
    const v = selectRetention({
      points: daily(40),
      policy: policy({ database: { full: { keepWithin: '1m' } } }),
      holds: [],
      now: NOW,
    });
    // 15 May 12:00 is one month back: the 15 May 02:00 point is older
    expect(forgotten(v)[0]).toBe('d31');
    expect(v.find((x) => x.id === 'd30')).toMatchObject({
      action: 'keep',
      reasons: ['database/full: within 1m'],
    });
  });

  it('names every rule that kept a point and why a forgotten one went', () => {
    const v = selectRetention({
      points: daily(10),
      policy: policy({ database: { full: { keepLast: 2, keepDaily: 3 } } }),
      holds: [],
      now: NOW,
    });
    expect(v[0]).toMatchObject({
      id: 'd0',
      action: 'keep',
      reasons: ['database/full: last', 'database/full: daily'],
    });
    expect(v[2]).toMatchObject({ id: 'd2', action: 'keep', reasons: ['database/full: daily'] });
    expect(v[3]).toMatchObject({
      id: 'd3',
      action: 'forget',
      reasons: ['database/full: no rule keeps it (keepLast 2, keepDaily 3)'],
    });
    expect(forgotten(v)).toEqual(['d3', 'd4', 'd5', 'd6', 'd7', 'd8', 'd9']);
  });
});

describe('what no policy, holds and parents keep', () => {
  it('keeps everything without a policy', () => {
    const v = selectRetention({ points: daily(5), policy: policy({}), holds: [], now: NOW });
    expect(forgotten(v)).toEqual([]);
    expect(v[4]!.reasons).toEqual(['no policy for database/full']);
  });

  it('a point of two sources goes only when both policies let it go', () => {
    const points = daily(3, { sources: ['database', 'files'] });
    const onlyDb = selectRetention({
      points,
      policy: policy({ database: { full: { keepLast: 1 } } }),
      holds: [],
      now: NOW,
    });
    expect(forgotten(onlyDb)).toEqual([]);
    const both = selectRetention({
      points,
      policy: policy({ database: { full: { keepLast: 1 } }, files: { full: { keepLast: 2 } } }),
      holds: [],
      now: NOW,
    });
    expect(forgotten(both)).toEqual(['d2']);
    expect(both[1]!.reasons).toEqual(['files/full: last']);
  });

  it('a held point and a point of a held wedding stay; a lapsed hold holds nothing', () => {
    const points = daily(5).map((p, i) => ({ ...p, weddings: i === 3 ? ['42'] : ['7'] }));
    const holds: RetentionHold[] = [
      { id: 'h1', weddingId: null, recoveryPointId: 'd4', reason: 'audit', until: null },
      { id: 'h2', weddingId: '42', recoveryPointId: null, reason: 'dispute', until: new Date('2026-07-01Z') },
      { id: 'h3', weddingId: '7', recoveryPointId: null, reason: 'lapsed', until: new Date('2026-06-01Z') },
    ];
    const v = selectRetention({
      points,
      policy: policy({ database: { full: { keepLast: 1 } } }),
      holds,
      now: NOW,
    });
    expect(forgotten(v)).toEqual(['d1', 'd2']);
    expect(v[3]!.reasons).toEqual(['held by hold h2 (wedding 42): dispute']);
    expect(v[4]!.reasons).toEqual(['held by hold h1 (this point): audit']);
    // after the wedding hold lapses, its point goes
    const later = selectRetention({
      points,
      policy: policy({ database: { full: { keepLast: 1 } } }),
      holds,
      now: new Date('2026-07-02Z'),
    });
    expect(forgotten(later)).toEqual(['d1', 'd2', 'd3']);
  });

  it('a point whose weddings are unknown is kept while any wedding hold is active', () => {
    const v = selectRetention({
      points: daily(2),
      policy: policy({ database: { full: { keepLast: 1 } } }),
      holds: [{ id: 'h', weddingId: '42', recoveryPointId: null, reason: 'x', until: null }],
      now: NOW,
    });
    expect(forgotten(v)).toEqual([]);
    expect(v[1]!.reasons[0]).toContain('not known');
  });

  it('keeps the parent chain of a kept incremental, and not of a forgotten one', () => {
    const points: RetentionPoint[] = [
      {
        id: 'i3',
        time: new Date('2026-06-15T03:00Z'),
        type: 'incremental',
        sources: ['database'],
        parent: 'i2',
      },
      {
        id: 'i2',
        time: new Date('2026-06-14T03:00Z'),
        type: 'incremental',
        sources: ['database'],
        parent: 'i1',
      },
      {
        id: 'i1',
        time: new Date('2026-06-13T03:00Z'),
        type: 'incremental',
        sources: ['database'],
        parent: 'f0',
      },
      { id: 'f0', time: new Date('2026-06-12T03:00Z'), type: 'full', sources: ['database'] },
      {
        id: 'x',
        time: new Date('2026-06-11T03:00Z'),
        type: 'incremental',
        sources: ['database'],
        parent: 'f-1',
      },
      { id: 'f-1', time: new Date('2026-06-10T03:00Z'), type: 'full', sources: ['database'] },
    ];
    const v = selectRetention({
      points,
      policy: policy({ database: { full: { keepLast: 1 }, incremental: { keepLast: 1 } } }),
      holds: [],
      now: NOW,
    });
    expect(forgotten(v)).toEqual(['x', 'f-1']);
    expect(v.find((p) => p.id === 'i1')!.reasons).toEqual(['parent of i2']);
  });

  it('keeps a pinned point with its reason, and its parents', () => {
    const points: RetentionPoint[] = [
      {
        id: 'i1',
        time: new Date('2026-06-01T03:00Z'),
        type: 'incremental',
        sources: ['database'],
        parent: 'i0',
        pinned: 'slot',
      },
      { id: 'i0', time: new Date('2026-05-31T03:00Z'), type: 'incremental', sources: ['database'] },
    ];
    const v = selectRetention({
      points,
      policy: policy({ database: { incremental: { keepWithin: '1d' } } }),
      holds: [],
      now: NOW,
    });
    expect(v.map((x) => [x.id, x.action, x.reasons])).toEqual([
      ['i1', 'keep', ['slot']],
      ['i0', 'keep', ['parent of i1']],
    ]);
  });

  it('keeps points taken after now', () => {
    const v = selectRetention({
      points: daily(2),
      policy: policy({ database: { full: { keepLast: 1 } } }),
      holds: [],
      now: new Date('2026-06-14T03:00Z'),
    });
    expect(v.map((x) => [x.id, x.action, x.reasons[0]])).toEqual([
      ['d0', 'keep', 'taken after now'],
      ['d1', 'keep', 'database/full: last'],
    ]);
  });
});

describe('retention config', () => {
  it('names the field of a malformed rule', () => {
    const bad = retentionSchema.safeParse({ database: { full: { keepWithin: '30 days' } } });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]!.path).toEqual(['database', 'full', 'keepWithin']);
    const empty = retentionSchema.safeParse({ files: { files: {} } });
    expect(empty.error!.issues[0]!.path).toEqual(['files', 'files']);
    const unknown = retentionSchema.safeParse({ database: { full: { keepForever: 1 } } });
    expect(unknown.error!.issues[0]!.message).toContain('keepForever');
  });

  it('reads durations as restic writes them', () => {
    const p = retentionSchema.parse({ files: { files: { keepWithin: '1y2m3w4d5h' } } });
    expect(p.files!.files!.keepWithin).toEqual({ years: 1, months: 2, days: 25, hours: 5 });
  });

  it('start-up refuses a malformed policy, naming the field; no policy keeps everything', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'wv-retention-'));
    try {
      const env = {
        WEDVAULT_DATA_DIR: path.join(dir, 'data'),
        WEDVAULT_FILES_DIR: path.join(dir, 'files'),
        WEDVAULT_CONFIG: path.join(dir, 'config.json'),
      };
      writeFileSync(
        env.WEDVAULT_CONFIG,
        JSON.stringify({ retention: { database: { full: { keepDaily: -1 } } } }),
      );
      expect(() => loadConfig(env)).toThrow(/retention\.database\.full\.keepDaily/);
      writeFileSync(env.WEDVAULT_CONFIG, JSON.stringify({}));
      expect(loadConfig(env).retention).toEqual({});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
