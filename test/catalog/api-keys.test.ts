import { afterAll, beforeAll, expect, it } from 'vitest';
import { findApiKey, upsertApiKey } from '../../src/catalog/api-keys.js';
import { createTestService, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await createTestService();
  // counts every write to api_keys, so the test sees writes, not only their result
  await svc.ctx.db.query(`
    CREATE TABLE key_writes (n int NOT NULL);
    INSERT INTO key_writes VALUES (0);
    CREATE FUNCTION count_key_write() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN UPDATE key_writes SET n = n + 1; RETURN NEW; END $$;
    CREATE TRIGGER count_key_write AFTER UPDATE ON api_keys FOR EACH ROW EXECUTE FUNCTION count_key_write();`);
});

afterAll(async () => {
  await svc?.cleanup();
});

const writes = async (): Promise<number> =>
  (await svc.ctx.db.query<{ n: number }>(`SELECT n FROM key_writes`)).rows[0]!.n;
const lastUsed = async (name: string): Promise<Date | null> =>
  (await svc.ctx.db.query<{ t: Date | null }>(`SELECT last_used_at t FROM api_keys WHERE name = $1`, [name]))
    .rows[0]!.t;

it('writes last_used_at at most once a minute per key, even under concurrent requests', async () => {
  const key = await upsertApiKey(svc.ctx.db, 'ops', ['backups:read']);
  const other = await upsertApiKey(svc.ctx.db, 'other', ['backups:read']);
  const start = await writes();

  const found = await Promise.all(Array.from({ length: 20 }, () => findApiKey(svc.ctx.db, key)));
  expect(found.every((k) => k?.name === 'ops')).toBe(true);
  expect(await writes()).toBe(start + 1);
  const first = await lastUsed('ops');
  expect(first).not.toBeNull();

  for (let i = 0; i < 5; i++) await findApiKey(svc.ctx.db, key);
  expect(await writes()).toBe(start + 1);
  expect(await lastUsed('ops')).toEqual(first);

  // the minute is per key: another key's first use is written
  await findApiKey(svc.ctx.db, other);
  expect(await writes()).toBe(start + 2);

  // a minute later the next use is written again
  await svc.ctx.db.query(
    `UPDATE api_keys SET last_used_at = now() - interval '61 seconds' WHERE name = 'ops'`,
  );
  const backdated = await lastUsed('ops');
  const afterBackdate = await writes();
  await findApiKey(svc.ctx.db, key);
  expect(await writes()).toBe(afterBackdate + 1);
  expect((await lastUsed('ops'))!.getTime()).toBeGreaterThan(backdated!.getTime());
});

it('finds no revoked or unknown key', async () => {
  const key = await upsertApiKey(svc.ctx.db, 'leaver', ['backups:read']);
  await svc.ctx.db.query(`UPDATE api_keys SET revoked_at = now() WHERE name = 'leaver'`);
  expect(await findApiKey(svc.ctx.db, key)).toBeUndefined();
  expect(await findApiKey(svc.ctx.db, 'wv_never_issued')).toBeUndefined();
});
