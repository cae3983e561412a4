import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Worker } from 'bullmq';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureAdminKey } from '../../src/bootstrap.js';
import { createApp } from '../../src/http/app.js';
import { requestBackup } from '../../src/producers/backups.js';
import { captureStatusKey } from '../../src/queues/capture-status.js';
import { seedDatabase } from '../../src/seed/database.js';
import { startCapture, type CaptureLoop } from '../../src/workers/capture.js';
import { startWorkers, stopWorkers } from '../../src/workers/run.js';
import { createTempDatabase, query, tableDigests } from '../helpers/pg.js';
import { createTestService, waitFor, waitForOperation, type TestService } from '../helpers/service.js';

/**
 * The whole path a couple's deleted wedding takes back: capture running in the service, a base
 * point, the wedding deleted, then POST /api/backups/recovery merging it back as of a second
 * before, through the restore worker; and the whole database recovered to that time.
 */
describe('point-in-time recovery end to end: capture, REST, worker', () => {
  let svc: TestService;
  let app: Express;
  let workers: Worker[];
  let capture: CaptureLoop;
  let admin: string;
  const slot = `wv_e2e_${process.pid}`;
  const auth = () => ({ Authorization: `Bearer ${admin}` });
  const source = () => svc.config.sources.postgres.url;
  /** Until a segment sealed after `t` exists: the stream is held up to past `t` (a busy server's WAL position is no guide). */
  const sealedAfter = async (t: string) =>
    waitFor(async () => {
      const at = await svc.ctx.queues.connection.hget(captureStatusKey(svc.ctx.queues.prefix), 'segmentAt');
      return !!at && Date.parse(at) > Date.parse(t);
    }, 30_000);
  const recovered = async (body: object) => {
    const res = await request(app).post('/api/backups/recovery').set(auth()).send(body).expect(202);
    return waitFor(async () => {
      const r = (await request(app).get(`/api/backups/recovery/${res.body.recoveryId}`).set(auth())).body;
      if (r.state === 'failed') throw new Error(JSON.stringify(r.error));
      return r.state === 'completed' && r;
    }, 60_000);
  };

  beforeAll(async () => {
    const cfg = path.join(process.env.TMPDIR ?? '/tmp', `wv-e2e-${process.pid}.json`);
    writeFileSync(
      cfg,
      JSON.stringify({ sources: { postgres: { pitr: { enabled: true, segmentSeconds: 0.3, slot } } } }),
    );
    svc = await createTestService({ WEDVAULT_CONFIG: cfg });
    await seedDatabase(source(), { scale: 0.001 });
    await ensureAdminKey(svc.ctx);
    admin = svc.env.WEDVAULT_ADMIN_KEY!;
    app = createApp(svc.ctx);
    capture = startCapture(svc.ctx);
    // the capture's slot exists before the base point, so the stream covers it
    await waitFor(
      async () =>
        (await query(source(), 'SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot])).length > 0,
      20_000,
    );
    workers = startWorkers(svc.ctx, { queues: ['backup', 'replicate', 'restore'], concurrency: 2 });
    const { operationId } = await requestBackup(svc.ctx, { type: 'full', components: ['database'] });
    await waitForOperation(svc.ctx, operationId, 60_000);
  }, 120_000);
  afterAll(async () => {
    await capture?.stop();
    await stopWorkers(workers ?? []);
    await query(
      source(),
      `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`,
      [slot],
    ).catch(() => undefined);
    await svc?.cleanup();
  });

  it('brings a deleted wedding back as of a second before, then the whole database as of then', async () => {
    const [w] = await query<{ id: string }>(
      source(),
      'SELECT wedding_id::text AS id FROM weddings ORDER BY wedding_id LIMIT 1',
    );
    await query(
      source(),
      `UPDATE guests SET full_name = full_name || ' (after base)' WHERE wedding_id = $1`,
      [w!.id],
    );
    await new Promise((r) => setTimeout(r, 300));
    const before = await tableDigests(source());
    const at = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 1000));
    // the wedding deleted whole: its gift registry rows too (the key is ON DELETE SET NULL, which
    // would leave them live and detached, and a merge refuses keys that are live)
    await query(
      source(),
      `DELETE FROM app.gift_registry WHERE guest_id IN (SELECT guest_id FROM guests WHERE wedding_id = $1);
       DELETE FROM weddings WHERE wedding_id = $1`.replaceAll('$1', String(Number(w!.id))),
    );
    expect(await tableDigests(source())).not.toEqual(before);
    await sealedAfter(new Date().toISOString());

    const merged = await recovered({
      targetTime: at,
      weddingId: w!.id,
      mode: 'merge',
      targetDatabase: source(),
    });
    expect(merged.validation).toMatchObject({ ok: true });
    // exactly as it was: the wedding's rows back (the change after the base included), nothing else touched
    expect(await tableDigests(source())).toEqual(before);

    const db = await createTempDatabase('pitr_e2e_whole', { create: false });
    try {
      const whole = await recovered({ targetTime: at, targetDatabase: db.url });
      expect(whole.achievedRpoS).toBe(0);
      expect(await tableDigests(db.url)).toEqual(before);
    } finally {
      await db.drop();
    }
  });
});
