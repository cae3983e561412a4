// A restore tries each copy in turn; when every copy fails, its error names each copy with its own cause.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect, it } from 'vitest';
import { filesSourceSchema, postgresSourceSchema } from '../../src/config/schema.js';
import { CorruptionError } from '../../src/errors.js';
import { runBackup } from '../../src/engine/backup.js';
import { restoreFromCopies } from '../../src/engine/failover.js';
import { replicateObjects } from '../../src/engine/replicate.js';
import { Repository } from '../../src/engine/repo/repository.js';
import { LocalStorage } from '../../src/storage/local.js';
import { pseudoRandom, tempDirsPerTest } from './repo/helpers.js';

const dir = tempDirsPerTest();

/** A files backup on a primary, copied to a secondary: two real local repositories of one point. */
async function twoCopies() {
  const photos = await dir('wv-failover-files-');
  await mkdir(path.join(photos, 'w7'));
  await writeFile(path.join(photos, 'w7', 'first-dance.jpg'), pseudoRandom(300_000, 7));
  const masterKey = randomBytes(32);
  const primaryDir = await dir('wv-failover-primary-');
  const secondaryDir = await dir('wv-failover-secondary-');
  const primary = new LocalStorage('local-primary', primaryDir);
  const secondary = new LocalStorage('local-secondary', secondaryDir);
  await Repository.init(primary, masterKey);
  const out = await runBackup({
    storage: primary,
    masterKey,
    type: 'files',
    components: ['files'],
    operationId: 'op-failover',
    sources: {
      postgres: { ...postgresSourceSchema.parse({}), url: '', supplierKey: undefined, changeSlot: false },
      files: [filesSourceSchema.parse({ name: 'photos', path: photos })],
    },
  });
  await replicateObjects(primary, secondary, out.objects);
  const copies = [
    { target: 'local-primary', storage: primary },
    { target: 'local-secondary', storage: secondary },
  ];
  return { masterKey, primaryDir, secondaryDir, copies, pointId: out.snapshotId };
}

/** Flips one byte in the middle of every pack file under a repository's data/ folder. */
async function corruptPacks(root: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(path.join(root, 'data'), { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const file = path.join(e.parentPath, e.name);
    const bytes = await readFile(file);
    bytes[bytes.length >> 1]! ^= 0xff;
    await writeFile(file, bytes);
    n++;
  }
  return n;
}

it('the second copy serves the restore when the first lost its config, and the first one’s cause is kept', async () => {
  const { masterKey, primaryDir, copies, pointId } = await twoCopies();
  await rm(path.join(primaryDir, 'config'));
  const out = await dir('wv-failover-out-');
  const r = await restoreFromCopies(copies, masterKey, pointId, { targetDir: out });
  expect(r.target).toBe('local-secondary');
  expect(r.failures).toEqual([{ target: 'local-primary', error: expect.stringMatching(/config/) }]);
  expect((await readFile(path.join(out, 'w7', 'first-dance.jpg'))).equals(pseudoRandom(300_000, 7))).toBe(
    true,
  );
});

it('when every copy fails, the error names each copy and its own cause', async () => {
  const { masterKey, primaryDir, secondaryDir, copies, pointId } = await twoCopies();
  await rm(path.join(primaryDir, 'config'));
  expect(await corruptPacks(secondaryDir)).toBeGreaterThan(0);
  const out = await dir('wv-failover-out-');
  const err = await restoreFromCopies(copies, masterKey, pointId, { targetDir: out }).catch(
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  const message = (err as Error).message;
  // each cause right after its own copy's name, in the order they were tried
  const primaryCause = message.match(/local-primary: ([^;]*)/)?.[1];
  const secondaryCause = message.match(/local-secondary: ([^;]*)/)?.[1];
  expect(primaryCause).toMatch(/config/);
  expect(secondaryCause).toMatch(/fails authentication/);
  expect(message.split('local-primary').length - 1).toBe(1);
  expect(message.indexOf('local-primary')).toBeLessThan(message.indexOf('local-secondary'));
  // the last copy's error class (and so its code and retryability) is unchanged
  expect(err).toBeInstanceOf(CorruptionError);
});
