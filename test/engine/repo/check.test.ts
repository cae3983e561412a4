// One checker: the whole-repository check and the check of one point on a copy name the same damage the same way.
import { expect, it } from 'vitest';
import { Repository } from '../../../src/engine/repo/repository.js';
import { getBuffer } from '../../../src/storage/types.js';
import { pseudoRandom, reposPerTest } from './helpers.js';

const repoFor = reposPerTest();
const seed = Number(process.env.CHECK_SEED ?? Date.now() % 100_000);
console.log(`check.test seed ${seed} (CHECK_SEED=${seed} repeats it)`);
let state = seed || 1;
/** Deterministic from the printed seed, so a failure can be replayed. */
const pick = (n: number) => {
  state = (state * 48271) % 0x7fffffff;
  return state % n;
};

it('finds each damage with both checks, under the same object and kind', async () => {
  const t = await repoFor();
  const tree: Record<string, unknown> = {};
  // two writer sessions: two index objects, so one can stand in for the other
  for (const scope of ['wedding:1', 'wedding:2']) {
    const w = t.repo.writer();
    tree[scope] = await w.writeBuffer(scope, pseudoRandom(200_000, scope.length + pick(1000)));
    await w.flush();
    await w.close();
  }
  const snap = await t.repo.saveSnapshot({ type: 'full', tree, stats: t.repo.writer().stats });
  const expected = await t.repo.objectsForSnapshot(snap.id);
  const keys = (prefix: string) => expected.map((o) => o.key).filter((k) => k.startsWith(prefix));
  const one = (prefix: string) => keys(prefix)[pick(keys(prefix).length)]!;
  const flip = async (key: string) => {
    const b = await getBuffer(t.storage, key);
    b[pick(b.length)]! ^= 1 << pick(8);
    await t.storage.put(key, b);
  };
  const [indexA, indexB] = keys('index/');
  expect(indexB).toBeDefined();
  const pack = one('data/');
  const snapKey = `snapshots/${snap.id}`;
  type Damage = {
    name: string;
    object: string;
    kind: string;
    mode: 'quick' | 'full';
    apply(): Promise<unknown>;
  };
  const damages: Damage[] = [
    { name: 'flipped pack byte', object: pack, kind: 'corrupt', mode: 'full', apply: () => flip(pack) },
    {
      name: 'flipped index byte',
      object: indexA!,
      kind: 'corrupt',
      mode: 'quick',
      apply: () => flip(indexA!),
    },
    {
      name: 'flipped snapshot byte',
      object: snapKey,
      kind: 'corrupt',
      mode: 'quick',
      apply: () => flip(snapKey),
    },
    {
      name: 'index replaced by another sound index',
      object: indexA!,
      kind: 'stale_index',
      mode: 'quick',
      apply: async () => t.storage.put(indexA!, await getBuffer(t.storage, indexB!)),
    },
    {
      name: 'missing pack',
      object: pack,
      kind: 'missing',
      mode: 'quick',
      apply: () => t.storage.delete(pack),
    },
  ];
  const saved = await Promise.all(
    expected.map(async (o) => [o.key, await getBuffer(t.storage, o.key)] as const),
  );
  for (const d of damages) {
    await d.apply();
    const whole = await (await Repository.open(t.storage, t.masterKey)).check({ mode: d.mode });
    const point = await Repository.check('copy', t.storage, {
      snapshotId: snap.id,
      expected,
      masterKey: t.masterKey,
      mode: d.mode,
      sample: 1,
      concurrency: 2,
    });
    expect(
      whole.map((p) => [p.object, p.kind]),
      d.name,
    ).toContainEqual([d.object, d.kind]);
    expect(point.problems.get(d.object)?.kind, d.name).toBe(d.kind);
    for (const [key, bytes] of saved) await t.storage.put(key, bytes);
    expect(await (await Repository.open(t.storage, t.masterKey)).check({ mode: 'full' })).toEqual([]);
  }
});
