// One conformance suite, written once, run against every provider on a real server: local disk, S3 (s3rver), GCS (firebase emulator), Azure (Azurite).
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import pLimit from 'p-limit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { targetSchema, type TargetConfig } from '../../src/config/schema.js';
import {
  CorruptionError,
  NotFoundError,
  StorageAuthError,
  TransientError,
  ValidationError,
} from '../../src/errors.js';
import { createStorage, type StorageFactoryOptions } from '../../src/storage/factory.js';
import { getBuffer, type Storage } from '../../src/storage/types.js';
import { startAzurite, startGcs, startS3, type Emulator } from '../helpers/emulators.js';

const MiB = 1024 * 1024;
/** Generous for ordinary calls on a busy test machine. */
const TIMEOUT_MS = 10_000;
/** Short, so "the server stopped answering" shows within seconds. */
const OUTAGE_TIMEOUT_MS = 2_000;

interface Harness {
  /** A storage for the target with another prefix (same bucket). */
  make(prefix: string, opts?: StorageFactoryOptions): Storage;
  /**
   * Empties the target under `ns` behind the store's back: a local target's whole directory is
   * removed and, with putBack, made again empty (an operator replacing it); others delete the objects.
   */
  wipe(s: Storage, ns: string, putBack: boolean): Promise<void>;
  /** The same target with credentials the store refuses; absent where the store checks none. */
  withBadCredentials?: () => Storage;
  emulator?: Emulator;
  stop(): Promise<void>;
}

/** Object stores have no directories: what goes is the objects the case wrote. */
async function deleteAll(s: Storage, ns: string): Promise<void> {
  for (const key of await keysOf(s, `${ns}/gone/`)) await s.delete(key);
}

function harnessFor(
  target: TargetConfig,
  env: Record<string, string>,
  emulator?: Emulator,
  cleanup?: () => Promise<void>,
  badEnv?: Record<string, string>,
  wipe: Harness['wipe'] = deleteAll,
) {
  const make = (prefix: string, opts: StorageFactoryOptions = {}, e = env) =>
    createStorage({ ...target, prefix, concurrency: 32 }, e, {
      timeoutMs: TIMEOUT_MS,
      retry: { attempts: 2, baseDelayMs: 20 },
      ...opts,
    });
  return {
    emulator,
    make,
    wipe,
    withBadCredentials: badEnv ? () => make('wv/p', {}, { ...env, ...badEnv }) : undefined,
    stop: async () => {
      await emulator?.stop();
      await cleanup?.();
    },
  } satisfies Harness;
}

/** A body that arrives in uneven pieces, as a network or a compressor would hand it over. */
function streamOf(data: Buffer, piece = 300_001): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += piece) yield data.subarray(i, i + piece);
    })(),
  );
}

async function keysOf(storage: Storage, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of storage.list(prefix)) keys.push(o.key);
  return keys.sort();
}

/**
 * Cases a provider cannot take, and why; the reason is in the skipped case's name, so a run's
 * report says what was not exercised where.
 */
const CANNOT: Record<'credentials' | 'outage', Partial<Record<string, string>>> = {
  credentials: {
    local: 'a local directory has no credentials to refuse',
    gcs: 'the GCS emulator (firebase) checks no credentials',
  },
  outage: { local: 'a local directory has no server that can stop answering' },
};

/** `it` for a case some providers cannot take: skipped there, with the reason in its name. */
function itUnless(what: keyof typeof CANNOT, name: string) {
  const reason = CANNOT[what][name];
  return (title: string, fn: () => Promise<void>, timeout?: number) =>
    it.skipIf(reason !== undefined)(reason ? `${title} (skipped on ${name}: ${reason})` : title, fn, timeout);
}

function conformance(name: string, start: () => Promise<Harness>) {
  describe(`storage conformance: ${name}`, () => {
    let h: Harness;
    let s: Storage;
    const ns = randomUUID();
    beforeAll(async () => {
      h = await start();
      s = h.make('wv/p');
    });
    afterAll(async () => h?.stop());

    it('round-trips a Buffer and a stream, and stats the size', async () => {
      const small = randomBytes(1000);
      await s.put(`${ns}/rt/buf`, small);
      expect((await getBuffer(s, `${ns}/rt/buf`)).equals(small)).toBe(true);
      await s.put(`${ns}/rt/stream`, streamOf(small, 77));
      expect((await getBuffer(s, `${ns}/rt/stream`)).equals(small)).toBe(true);
      await s.put(`${ns}/rt/empty`, Buffer.alloc(0));
      expect((await getBuffer(s, `${ns}/rt/empty`)).length).toBe(0);
      const info = await s.stat(`${ns}/rt/buf`);
      expect(info).toMatchObject({ key: `${ns}/rt/buf`, size: 1000 });
      // Overwrite replaces the whole object.
      await s.put(`${ns}/rt/buf`, Buffer.from('shorter'));
      expect((await getBuffer(s, `${ns}/rt/buf`)).toString()).toBe('shorter');
    });

    it('writes a list of parts back to back, views into one buffer included', async () => {
      const shared = randomBytes(3000);
      const parts = [
        shared.subarray(0, 1000),
        Buffer.alloc(0),
        randomBytes(17),
        shared.subarray(2000),
        shared,
      ];
      await s.put(`${ns}/rt/parts`, parts, { size: 6017 });
      expect((await getBuffer(s, `${ns}/rt/parts`)).equals(Buffer.concat(parts))).toBe(true);
      await s.put(`${ns}/rt/one-part`, [shared]);
      expect((await getBuffer(s, `${ns}/rt/one-part`)).equals(shared)).toBe(true);
    });

    it('streams a 12 MiB object in and reads it whole and in ranges', async () => {
      const big = randomBytes(12 * MiB);
      await s.put(`${ns}/big`, streamOf(big));
      expect((await s.stat(`${ns}/big`)).size).toBe(big.length);
      const whole = await getBuffer(s, `${ns}/big`);
      expect(createHash('sha256').update(whole).digest('hex')).toBe(
        createHash('sha256').update(big).digest('hex'),
      );
      const ranges = [
        { offset: 0, length: 100 },
        { offset: 5 * MiB - 7, length: MiB + 3 },
        { offset: big.length - 10, length: 10 },
        { offset: big.length - 1000 },
      ];
      for (const r of ranges) {
        const end = r.length === undefined ? big.length : r.offset + r.length;
        expect((await getBuffer(s, `${ns}/big`, r)).equals(big.subarray(r.offset, end))).toBe(true);
      }
    });

    it('refuses a body whose MD5 does not match, leaving no object', async () => {
      const body = randomBytes(4096);
      const wrong = createHash('md5').update('something else').digest();
      await expect(s.put(`${ns}/md5/buf`, body, { md5: wrong })).rejects.toBeInstanceOf(CorruptionError);
      await expect(s.put(`${ns}/md5/stream`, streamOf(body, 1000), { md5: wrong })).rejects.toBeInstanceOf(
        CorruptionError,
      );
      await expect(s.stat(`${ns}/md5/buf`)).rejects.toBeInstanceOf(NotFoundError);
      await expect(s.stat(`${ns}/md5/stream`)).rejects.toBeInstanceOf(NotFoundError);
      const right = createHash('md5').update(body).digest();
      await s.put(`${ns}/md5/ok`, streamOf(body, 1000), { md5: right });
      expect((await getBuffer(s, `${ns}/md5/ok`)).equals(body)).toBe(true);
    });

    it('reports missing keys as NotFoundError and deletes idempotently', async () => {
      await expect(s.get(`${ns}/missing`)).rejects.toBeInstanceOf(NotFoundError);
      await expect(s.get(`${ns}/missing`, { offset: 1, length: 2 })).rejects.toBeInstanceOf(NotFoundError);
      await expect(s.stat(`${ns}/missing`)).rejects.toBeInstanceOf(NotFoundError);
      await s.put(`${ns}/del`, Buffer.from('x'));
      await s.delete(`${ns}/del`);
      await expect(s.stat(`${ns}/del`)).rejects.toBeInstanceOf(NotFoundError);
      await expect(s.get(`${ns}/del`)).rejects.toBeInstanceOf(NotFoundError);
      await s.delete(`${ns}/del`);
      await s.delete(`${ns}/never-existed`);
    });

    it('rejects unsafe keys', async () => {
      for (const key of ['', '/abs', 'a/../b', 'a//b', 'a/./b']) {
        await expect(s.put(key, Buffer.from('x'))).rejects.toBeInstanceOf(ValidationError);
        await expect(s.stat(key)).rejects.toBeInstanceOf(ValidationError);
      }
    });

    it('lists past 1,000 objects by prefix, and only that prefix', async () => {
      const n = 1050;
      const expected = Array.from({ length: n }, (_, i) => `${ns}/many/${String(i).padStart(5, '0')}`);
      const limit = pLimit(32);
      await Promise.all(expected.map((k) => limit(() => s.put(k, Buffer.from(k)))));
      await s.put(`${ns}/manyx`, Buffer.from('sibling'));
      await s.put(`${ns}/other/a`, Buffer.from('other'));
      expect(await keysOf(s, `${ns}/many/`)).toEqual(expected);
      const infos = [];
      for await (const o of s.list(`${ns}/many/0000`)) infos.push(o);
      expect(infos.map((o) => o.key).sort()).toEqual(expected.slice(0, 10));
      for (const o of infos) expect(o.size).toBe(o.key.length);
      // Keys are relative to the target prefix: another prefix on the same store sees none of them.
      expect(await keysOf(h.make('wv/q'), `${ns}/`)).toEqual([]);
      expect(await keysOf(h.make('wv'), `p/${ns}/other/`)).toEqual([`p/${ns}/other/a`]);
    });

    it('writes through after the target directory is removed and put back between two writes', async () => {
      const body = randomBytes(70_000);
      const kinds = {
        buffer: () => body,
        parts: () => [body.subarray(0, 1234), body.subarray(1234)],
        stream: () => streamOf(body, 9999),
      };
      for (const [kind, make] of Object.entries(kinds)) {
        for (const putBack of [true, false]) {
          // the first write makes (and the store remembers) the directories; then they go
          await s.put(`${ns}/gone/a/first`, Buffer.from('before'));
          await h.wipe(s, ns, putBack);
          await expect(s.stat(`${ns}/gone/a/first`)).rejects.toBeInstanceOf(NotFoundError);
          await s.put(`${ns}/gone/a/${kind}`, make());
          expect((await getBuffer(s, `${ns}/gone/a/${kind}`)).equals(body)).toBe(true);
        }
      }
    });

    itUnless('credentials', name)('maps refused credentials to StorageAuthError', async () => {
      const bad = h.withBadCredentials!();
      await expect(bad.put(`${ns}/auth`, Buffer.from('x'))).rejects.toBeInstanceOf(StorageAuthError);
      await expect(bad.stat(`${ns}/rt/buf`)).rejects.toBeInstanceOf(StorageAuthError);
    });

    itUnless('outage', name)(
      'fails with TransientError, in bounded time, when the server stops answering mid-upload',
      async () => {
        const e = h.emulator!;
        const quick = h.make('wv/p', { timeoutMs: OUTAGE_TIMEOUT_MS });
        const started = Date.now();
        async function* body() {
          for (let i = 0; i < 24; i++) {
            if (i === 3) e.pause();
            yield randomBytes(MiB);
          }
        }
        try {
          await expect(quick.put(`${ns}/paused`, Readable.from(body()))).rejects.toBeInstanceOf(
            TransientError,
          );
          expect(Date.now() - started).toBeLessThan(OUTAGE_TIMEOUT_MS * 6);
        } finally {
          e.resume();
        }
        // The store works again once it answers, and the half-sent object never appeared.
        await expect(s.stat(`${ns}/paused`)).rejects.toBeInstanceOf(NotFoundError);
        await s.put(`${ns}/after-pause`, Buffer.from('ok'));
        // s3rver, woken up with the abandoned upload's bytes still queued, has been seen to answer
        // the first read of a fresh object with an empty body: poll briefly for the stored bytes.
        await vi.waitFor(
          async () => expect((await getBuffer(s, `${ns}/after-pause`)).toString()).toBe('ok'),
          { timeout: 5_000, interval: 200 },
        );
      },
    );

    itUnless('outage', name)('retries a Buffer put through an outage and succeeds', async () => {
      const e = h.emulator!;
      const retries: number[] = [];
      const store = h.make('wv/p', {
        timeoutMs: OUTAGE_TIMEOUT_MS,
        retry: {
          attempts: 4,
          baseDelayMs: 50,
          onRetry: (info) => {
            retries.push(info.attempt);
            e.resume();
          },
        },
      });
      const body = randomBytes(64 * 1024);
      e.pause();
      try {
        await store.put(`${ns}/retried`, body);
      } finally {
        e.resume();
      }
      expect(retries.length).toBeGreaterThanOrEqual(1);
      expect((await getBuffer(store, `${ns}/retried`)).equals(body)).toBe(true);
    });
  });
}

conformance('local', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'wv-local-'));
  const target = targetSchema.parse({ type: 'local', name: 'local-test', path: dir });
  // the target's own directory (prefix wv/p) goes, not only what is under ns
  const wipe = async (_s: Storage, _ns: string, putBack: boolean) => {
    await rm(path.join(dir, 'wv', 'p'), { recursive: true, force: true });
    if (putBack) await mkdir(path.join(dir, 'wv', 'p'));
  };
  return harnessFor(target, {}, undefined, () => rm(dir, { recursive: true, force: true }), undefined, wipe);
});

conformance('s3', async () => {
  const e = await startS3();
  return harnessFor(e.target, e.env, e, undefined, { WV_TEST_S3_ACCESS_KEY_ID: 'NOT-A-KNOWN-KEY' });
});

conformance('gcs', async () => {
  const e = await startGcs();
  return harnessFor(e.target, e.env, e);
});

conformance('azure', async () => {
  const e = await startAzurite();
  const wrongKey = Buffer.alloc(64, 7).toString('base64');
  const badConnection = e.env.WV_TEST_AZURE_CONNECTION_STRING!.replace(
    /AccountKey=[^;]+/,
    `AccountKey=${wrongKey}`,
  );
  return harnessFor(e.target, e.env, e, undefined, { WV_TEST_AZURE_CONNECTION_STRING: badConnection });
});
