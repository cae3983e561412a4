import { describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, ValidationError } from '../../../src/errors.js';
import {
  bounded,
  chooseBase,
  micros,
  parseTarget,
  refuseSchemaBreak,
  withinTarget,
} from '../../../src/engine/pitr/base.js';
import type { Txn } from '../../../src/engine/pitr/types.js';

const txn = (commitLsn: string, commitTime: string): Txn => ({
  xid: commitLsn,
  commitLsn,
  commitTime,
  changes: [],
});
const bases = [
  { id: 'a', lsn: '0/100', time: '2026-12-08T10:00:00.000000Z' },
  { id: 'b', lsn: '0/900', time: '2026-12-08T11:00:00.000000Z' },
];

describe('recovery targets and base points', () => {
  it('reads a target: exactly one of time and LSN, any zone, microseconds kept', () => {
    expect(() => parseTarget({})).toThrow(ValidationError);
    expect(() => parseTarget({ time: '2026-12-08T10:00:00Z', lsn: '0/1' })).toThrow(ValidationError);
    expect(() => parseTarget({ time: 'yesterday' })).toThrow(ValidationError);
    expect(() => parseTarget({ lsn: 'nope' })).toThrow(ValidationError);
    expect(parseTarget({ time: '2026-12-08T12:00:00.123456+02:00' })).toEqual({
      time: micros('2026-12-08T10:00:00.123456Z'),
      inclusive: true,
    });
    expect(micros('2026-12-08T10:00:00.123456Z') - micros('2026-12-08T10:00:00.123Z')).toBe(456);
  });

  it('places a commit at the target by its microsecond, inclusive by default', () => {
    const at = '2026-12-08T10:00:00.123456Z';
    const c = { commitTime: at, commitLsn: '0/500' };
    expect(withinTarget(parseTarget({ time: at }), c)).toBe(true);
    expect(withinTarget(parseTarget({ time: at, inclusive: false }), c)).toBe(false);
    expect(withinTarget(parseTarget({ time: '2026-12-08T10:00:00.123455Z' }), c)).toBe(false);
    expect(withinTarget(parseTarget({ lsn: '0/500' }), c)).toBe(true);
    expect(withinTarget(parseTarget({ lsn: '0/500', inclusive: false }), c)).toBe(false);
  });

  it('chooses the newest base at or before the target, or the one asked for when it fits', () => {
    expect(chooseBase(bases, undefined, parseTarget({ time: '2026-12-08T10:30:00Z' })).id).toBe('a');
    expect(chooseBase(bases, undefined, parseTarget({ time: '2026-12-08T11:00:00Z' })).id).toBe('b');
    expect(chooseBase(bases, undefined, parseTarget({ lsn: '0/8FF' })).id).toBe('a');
    expect(chooseBase(bases, 'a', parseTarget({ time: '2026-12-08T12:00:00Z' })).id).toBe('a');
    expect(() => chooseBase(bases, 'b', parseTarget({ time: '2026-12-08T10:30:00Z' }))).toThrow(
      ValidationError,
    );
    expect(() => chooseBase(bases, undefined, parseTarget({ time: '2026-12-08T09:00:00Z' }))).toThrow(
      NotFoundError,
    );
  });

  it('cuts the feed to after the base and up to the target, and says whether it got there', async () => {
    const feed = async function* () {
      yield txn('0/100', '2026-12-08T10:00:00Z'); // in the base already
      yield txn('0/200', '2026-12-08T10:00:01Z');
      yield txn('0/300', '2026-12-08T10:00:02Z');
      yield txn('0/400', '2026-12-08T10:00:03Z');
    };
    const cut = bounded(feed(), bases[0]!, parseTarget({ time: '2026-12-08T10:00:02Z' }), () => undefined);
    const got: string[] = [];
    for await (const t of cut) got.push(t.commitLsn);
    expect(got).toEqual(['0/200', '0/300']);
    expect(cut.reached).toBe(true);
    const short = bounded(feed(), bases[0]!, parseTarget({ time: '2026-12-08T10:00:09Z' }), () => undefined);
    for await (const t of short) void t;
    expect(short.reached).toBe(false);
    expect(short.last?.commitLsn).toBe('0/400');
  });

  it('refuses a time target past a schema break after the base, naming both times', () => {
    const breaks = [{ at: '2026-12-08T10:10:00Z', basePointId: 'b', baseTime: '2026-12-08T11:00:00Z' }];
    expect(() =>
      refuseSchemaBreak(breaks, bases[0]!, parseTarget({ time: '2026-12-08T10:05:00Z' })),
    ).not.toThrow();
    expect(() => refuseSchemaBreak(breaks, bases[0]!, parseTarget({ time: '2026-12-08T10:20:00Z' }))).toThrow(
      /2026-12-08T10:10:00Z.*2026-12-08T11:00:00Z/,
    );
    expect(() =>
      refuseSchemaBreak(breaks, bases[1]!, parseTarget({ time: '2026-12-08T11:20:00Z' })),
    ).not.toThrow();
    expect(() => refuseSchemaBreak(breaks, bases[0]!, parseTarget({ time: '2026-12-08T10:20:00Z' }))).toThrow(
      ConflictError,
    );
  });
});
