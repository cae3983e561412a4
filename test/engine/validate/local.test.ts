// The validator on local disk: the corruption matrix, plus quick/full/sample semantics and foreign repositories.
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { TransientError, ValidationError } from '../../../src/errors.js';
import { replicateObjects } from '../../../src/engine/replicate.js';
import { REPO_KEY_OBJECT } from '../../../src/engine/repo/keys.js';
import { CONFIG_OBJECT, Repository } from '../../../src/engine/repo/repository.js';
import { validatePoint } from '../../../src/engine/validate/validate.js';
import type { Copy } from '../../../src/engine/validate/validate.js';
import { getBuffer, type Storage } from '../../../src/storage/types.js';
import {
  buildFixture,
  damages,
  localStore,
  validateFixture,
  validationMatrix,
  type Fixture,
  pick,
} from './suite.js';

let fx: Fixture;

beforeAll(async () => {
  fx = await buildFixture();
});

validationMatrix(
  'local',
  () => fx,
  () => localStore('victim'),
);

async function replica(name = 'copy'): Promise<Storage> {
  const s = localStore(name);
  await replicateObjects(fx.origin, s, fx.objects);
  return s;
}

const run = (copies: Copy[], mode: 'quick' | 'full', more: { sample?: number; repair?: boolean } = {}) =>
  validateFixture(fx, copies, mode, more);

const packBytes = () => fx.objects.filter((o) => o.key.startsWith('data/')).reduce((n, o) => n + o.size, 0);

describe('validation semantics', () => {
  it('passes a sound point in both modes; full reads every pack, quick none', async () => {
    const copies = [{ target: 'a', storage: await replica() }];
    const quick = await run(copies, 'quick');
    const full = await run(copies, 'full');
    for (const r of [quick, full]) {
      expect(r).toMatchObject({ status: 'passed', problems: [], repairs: [] });
      expect(r.perTarget[0]).toMatchObject({ target: 'a', ok: true, objectsChecked: fx.objects.length });
    }
    expect(quick.perTarget[0]!.bytesRead).toBeLessThan(packBytes());
    expect(full.perTarget[0]!.bytesRead).toBeGreaterThanOrEqual(packBytes());
  });

  it("opens inline content (a delta's rows of one wedding) and names the point whose lists hold a bad one", async () => {
    const masterKey = randomBytes(32);
    const s = localStore('inline');
    const repo = await Repository.init(s, masterKey);
    const w = repo.writer();
    const rows = Buffer.from('7\t42\tAda\tchanged\n'.repeat(20));
    const good = await w.writeBuffer('wedding:42', rows, { inline: true });
    await w.flush();
    await w.close();
    expect(good.inline).toBeDefined();
    // sealed under wedding 42's key but named as another size: written wrong, no copy can mend it
    const bad = { ...good, size: good.size - 1 };
    const sound = await repo.saveSnapshot({ type: 'full', tree: { good }, stats: w.stats });
    const broken = await repo.saveSnapshot({ type: 'full', tree: { good, bad }, stats: w.stats });
    const validate = async (id: string, mode: 'quick' | 'full') =>
      validatePoint({
        snapshotId: id,
        expected: await repo.objectsForSnapshot(id),
        copies: [{ target: 'a', storage: s }],
        masterKey,
        mode,
      });
    for (const mode of ['quick', 'full'] as const) {
      expect(await validate(sound.id, mode)).toMatchObject({ status: 'passed', problems: [] });
      const r = await validate(broken.id, mode);
      expect(r.status).toBe('failed');
      expect(r.problems).toEqual([
        expect.objectContaining({
          object: `snapshots/${broken.id}`,
          kind: 'corrupt',
          detail: expect.stringMatching(/inline content of wedding:42/),
        }),
      ]);
    }
  });

  it('quick mode leaves a flipped pack byte to full mode', async () => {
    const s = await replica();
    await damages['flipped byte in a pack']!.apply(fx, s);
    expect((await run([{ target: 'a', storage: s }], 'quick')).status).toBe('passed');
    expect((await run([{ target: 'a', storage: s }], 'full')).status).toBe('failed');
  });

  it('sees a changed byte that decodes to the same MAC (hex case in the config MAC)', async () => {
    const s = await replica();
    const b = await getBuffer(s, CONFIG_OBJECT);
    const mac = b.indexOf('"mac":"') + 7;
    const letter = [...b.subarray(mac)].findIndex((c) => c >= 0x61 && c <= 0x66);
    b[mac + letter]! ^= 0x20; // 'a' → 'A': the same bytes once hex-decoded
    await s.put(CONFIG_OBJECT, b);
    // one decoder, one strictness: the repository refuses to open it too
    await expect(Repository.open(s, fx.masterKey)).rejects.toThrow(/config: MAC does not verify/);
    const r = await run([{ target: 'a', storage: s }], 'quick');
    expect(r.problems).toEqual([expect.objectContaining({ object: CONFIG_OBJECT, kind: 'corrupt' })]);
  });

  it('repairs a config whose repository id was damaged (damage, not another repository)', async () => {
    const s = await replica();
    const b = await getBuffer(s, CONFIG_OBJECT);
    b[b.indexOf('\\"id\\":\\"') + 10]! ^= 0x01;
    await s.put(CONFIG_OBJECT, b);
    const r = await run(
      [
        { target: 'a', storage: s },
        { target: 'b', storage: await replica('b') },
      ],
      'quick',
      { repair: true },
    );
    expect(r.repairs).toEqual([{ target: 'a', object: CONFIG_OBJECT, from: 'b' }]);
    expect(r.status).toBe('passed');
  });

  it('sample reads only a fraction of the packs', async () => {
    const copies = [{ target: 'a', storage: await replica() }];
    const some = await run(copies, 'full', { sample: 0.01 });
    expect(some.status).toBe('passed');
    expect(some.perTarget[0]!.bytesRead).toBeLessThan(packBytes());
    await expect(run(copies, 'full', { sample: 2 })).rejects.toBeInstanceOf(ValidationError);
  });

  it('names a swapped pack and the pack whose bytes it holds', async () => {
    const s = await replica();
    await damages['pack swapped with another pack']!.apply(fx, s);
    const r = await run([{ target: 'a', storage: s }], 'full');
    expect(r.problems).toEqual([
      expect.objectContaining({
        object: pick(fx, 'data/'),
        kind: 'corrupt',
        detail: expect.stringContaining(pick(fx, 'data/', 1)),
      }),
    ]);
  });

  it('does not overwrite a target that holds another repository', async () => {
    const victim = localStore('foreign');
    const other = await Repository.init(victim, randomBytes(32));
    const theirs = await getBuffer(victim, REPO_KEY_OBJECT);
    const r = await run(
      [
        { target: 'foreign', storage: victim },
        { target: 'healthy', storage: await replica('healthy') },
      ],
      'full',
      { repair: true },
    );
    expect(r.status).toBe('failed');
    expect(r.repairs).toEqual([]);
    expect(r.problems.find((p) => p.object === REPO_KEY_OBJECT)).toMatchObject({
      target: 'foreign',
      kind: 'wrong_key',
      repaired: false,
      detail: expect.stringContaining(`another repository (${other.id})`),
    });
    expect((await getBuffer(victim, REPO_KEY_OBJECT)).equals(theirs)).toBe(true);
  });

  it('reports an unreachable target and still validates and repairs the others', async () => {
    const down: Storage = {
      name: 'down',
      put: () => Promise.reject(new TransientError('connection refused')),
      get: () => Promise.reject(new TransientError('connection refused')),
      stat: () => Promise.reject(new TransientError('connection refused')),
      delete: () => Promise.reject(new TransientError('connection refused')),
      // eslint-disable-next-line require-yield
      list: async function* () {
        throw new TransientError('connection refused');
      },
    };
    const victim = await replica('victim');
    await damages['missing pack']!.apply(fx, victim);
    const r = await run(
      [
        { target: 'down', storage: down },
        { target: 'victim', storage: victim },
        { target: 'healthy', storage: await replica('healthy') },
      ],
      'quick',
      { repair: true },
    );
    expect(r.problems.map((p) => [p.target, p.kind, p.repaired])).toEqual([
      ['down', 'unreachable', false],
      ['victim', 'missing', true],
    ]);
    expect(r.perTarget.map((t) => t.ok)).toEqual([false, true, true]);
  });

  it('a full verification reads every pack byte of the point', async () => {
    const expected = await (await Repository.open(fx.origin, fx.masterKey)).objectsForSnapshot(fx.pointId);
    const r = await validatePoint({
      snapshotId: fx.pointId,
      expected,
      copies: [{ target: fx.origin.name, storage: fx.origin }],
      masterKey: fx.masterKey,
      mode: 'full',
    });
    expect(r.status).toBe('passed');
    expect(r.perTarget[0]!.bytesRead).toBeGreaterThanOrEqual(packBytes());
  });
});
