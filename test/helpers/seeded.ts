/**
 * A seeded pseudo-random source for tests that pick what to damage: the seed is printed, and
 * TEST_SEED=<n> replays a run exactly (Math.random could not).
 */

export interface Seeded {
  readonly seed: number;
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
}

/** One source per test file: `label` names it in the printed line. */
export function seeded(label: string): Seeded {
  const given = process.env.TEST_SEED;
  const seed =
    given !== undefined && given !== '' ? Number(given) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0;
  console.log(`${label}: damage seed ${seed} (TEST_SEED=${seed} repeats it)`);
  // mulberry32: small, fast and good enough to spread picks; not for anything secret
  let a = seed;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    seed,
    next,
    int,
    pick: <T>(items: readonly T[]) => {
      if (items.length === 0) throw new Error(`${label}: nothing to pick from`);
      return items[int(items.length)]!;
    },
  };
}
