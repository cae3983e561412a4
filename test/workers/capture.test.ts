import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changeFeed } from '../../src/engine/pitr/feed.js';
import { pitrWindow } from '../../src/engine/pitr/window.js';
import { Repository } from '../../src/engine/repo/repository.js';
import { captureStatusKey } from '../../src/queues/capture-status.js';
import { query } from '../helpers/pg.js';
import { exited, spawnWedvault } from '../helpers/processes.js';
import { createTestService, type TestService } from '../helpers/service.js';

/** fn's value once `ok` holds, polled. */
async function waitFor<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Two worker processes with capture on, a write load, and the capturing one SIGKILLed mid-load. */
describe('capture worker: one per source, survives SIGKILL with no gap and no duplicate', () => {
  let svc: TestService;
  const children: ReturnType<typeof spawnWedvault>[] = [];
  const slot = `wv_capw_${process.pid}`;
  const source = () => svc.config.sources.postgres.url;
  const holder = async () =>
    (await svc.ctx.queues.connection.hget(captureStatusKey(svc.ctx.queues.prefix), 'holder')) ?? '';
  const spawn = () => {
    // only the capture runs in these workers: no queue of theirs is fed here
    const c = spawnWedvault(['--role', 'worker', '--queues', 'purge', '--concurrency', '1'], {
      ...svc.env,
      LOG_LEVEL: 'warn',
    });
    children.push(c);
    return c;
  };

  beforeAll(async () => {
    const dir = path.join(process.env.TMPDIR ?? '/tmp', `wv-capw-${process.pid}.json`);
    writeFileSync(
      dir,
      JSON.stringify({ sources: { postgres: { pitr: { enabled: true, segmentSeconds: 0.3, slot } } } }),
    );
    svc = await createTestService({ WEDVAULT_CONFIG: dir });
    await query(
      svc.config.databaseUrl.replace(/\/[^/]*$/, '/postgres'),
      `CREATE DATABASE ${source().split('/').pop()}`,
    );
    await query(
      source(),
      `CREATE TABLE weddings (id int PRIMARY KEY, wedding_date date);
       CREATE TABLE log (id bigserial PRIMARY KEY, wedding_id int NOT NULL REFERENCES weddings, n int);
       INSERT INTO weddings VALUES (1, '2027-01-01'), (2, '2027-02-02')`,
    );
    // the repository a first backup would have made (the capture never makes one)
    await Repository.init(svc.ctx.storage(svc.config.primaryTarget), svc.config.masterKey);
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(children.map(exited));
    await query(
      source(),
      `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`,
      [slot],
    ).catch(() => undefined);
    await svc.cleanup();
  });

  it('one captures, the other stands by and takes over; the stream has every transaction once', async () => {
    const a = spawn();
    const b = spawn();
    const first = await waitFor(holder, (h) => h !== '', 30_000);
    const [victim, survivor] = first.startsWith(`${a.pid}.`) ? [a, b] : [b, a];
    // the load: one row per transaction, numbered
    let n = 0;
    let stop = false;
    const load = (async () => {
      while (!stop)
        await query(source(), 'INSERT INTO log (wedding_id, n) VALUES ($1, $2)', [1 + (n % 2), ++n]);
    })();
    await waitFor(
      async () => n,
      (v) => v > 150,
      20_000,
    );
    victim.kill('SIGKILL');
    await exited(victim);
    const next = await waitFor(holder, (h) => h.startsWith(`${survivor.pid}.`), 20_000);
    expect(next).not.toBe(first);
    await waitFor(
      async () => n,
      (v) => v > 400,
      20_000,
    );
    stop = true;
    await load;
    const repo = await Repository.open(svc.ctx.storage(svc.config.primaryTarget), svc.config.masterKey);
    /** The load's numbers as the stream holds them, from the first segment on. */
    const captured = async () => {
      const keys = await repo.listSegmentKeys('postgres');
      const start = (await repo.segmentSummary(keys[0]!)).startLsn;
      const seen: number[] = [];
      const until = { time: new Date(Date.now() + 60_000).toISOString() };
      for await (const t of changeFeed(repo, { source: 'postgres', afterLsn: start, until }))
        for (const c of t.changes) if (c.kind === 'row' && c.table === 'log') seen.push(Number(c.new!.n));
      return seen;
    };
    // the last transactions land in a segment within a few periods (an idle source's WAL position is no guide)
    const seen = await waitFor(captured, (s) => s.length >= n, 20_000);
    const keys = await repo.listSegmentKeys('postgres');
    expect(seen).toEqual(Array.from({ length: n }, (_, i) => i + 1)); // no gap, no duplicate, in order
    expect((await pitrWindow(repo, 'postgres', [])).gaps).toEqual([]);
    // the second target holds the same segments
    const second = svc.config.targets[1]!.name;
    await waitFor(
      async () => {
        const have: string[] = [];
        for await (const o of svc.ctx.storage(second).list('changes/postgres/')) have.push(o.key);
        return have.length;
      },
      (len) => len >= keys.length,
      10_000,
    );
  });

  it('a lost slot is an alert, a recorded gap and a base backup requested, never silent', async () => {
    // the survivor is capturing; take its slot away between two peeks
    await waitFor(
      async () =>
        (
          await query<{ n: number }>(
            source(),
            `SELECT count(pg_drop_replication_slot(slot_name))::int AS n FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`,
            [slot],
          ).catch(() => [{ n: 0 }])
        )[0]!.n,
      (dropped) => dropped === 1,
      10_000,
    );
    await query(source(), 'INSERT INTO log (wedding_id, n) VALUES (1, -1)');
    const repo = await Repository.open(svc.ctx.storage(svc.config.primaryTarget), svc.config.masterKey);
    const w = await waitFor(
      () => pitrWindow(repo, 'postgres', []),
      (x) => x.gaps.length === 1,
      20_000,
    );
    expect(w.gaps[0]!.afterLsn).toBeTruthy();
    const ops = await waitFor(
      () =>
        query<{ requested_by: string; type: string }>(
          svc.config.databaseUrl,
          `SELECT requested_by, type FROM backup_operations`,
        ),
      (rows) => rows.some((r) => r.requested_by === 'pitr-capture'),
      10_000,
    );
    expect(ops.find((r) => r.requested_by === 'pitr-capture')!.type).toBe('full');
    const out = children.map((c) => c.output.join('')).join('');
    expect(out).toContain('was missing');
  });
});
