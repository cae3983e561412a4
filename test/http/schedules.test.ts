// The schedules API on a real catalog, source and Redis: list, edit (scope, audit, 400s naming the
// field), preview, one wedding's protection (404 when the source does not know it), the SLA gauges,
// and the SLA monitor's alert (once per breach, POSTed to the webhook).
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertApiKey } from '../../src/catalog/api-keys.js';
import { closeCeremonyPools } from '../../src/engine/postgres/ceremony.js';
import { createApp } from '../../src/http/app.js';
import { rebuildSchedules } from '../../src/producers/schedules.js';
import { QUEUES } from '../../src/queues/names.js';
import { checkSla } from '../../src/workers/sla-monitor.js';
import { SCHEDULE_IDS, createWeddingsSource, insertPoints } from '../helpers/cadence.js';
import { createTestService, waitFor, type TestService } from '../helpers/service.js';
import { tempDirsForFile } from '../helpers/temp.js';

const tempDir = tempDirsForFile();
let svc: TestService;
let app: Express;
let writer: string;
let reader: string;
let hook: Server;
const received: unknown[] = [];
const auth = (key: string) => ({ Authorization: `Bearer ${key}` });
const soon = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);

beforeAll(async () => {
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push(JSON.parse(body));
      res.end('ok');
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const dir = tempDir('wv-schedules-http-');
  const config = path.join(dir, 'config.json');
  const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/alert`;
  writeFileSync(config, JSON.stringify({ scheduling: { alertWebhookUrl: url } }));
  svc = await createTestService({ WEDVAULT_CONFIG: config });
  await createWeddingsSource(svc.config.sources.postgres.url, [
    { id: 'w-week', date: soon(3) },
    { id: 'w-later', date: soon(400) },
  ]);
  await insertPoints(svc.ctx.db, [
    { weddingId: 'w-week', type: 'files', at: new Date(Date.now() - 5 * 60_000), verified: true },
    { weddingId: 'w-week', type: 'incremental', at: new Date(Date.now() - 10 * 60_000), verified: true },
    { weddingId: 'w-later', type: 'files', at: new Date(Date.now() - 3 * 86_400_000), verified: true },
    { weddingId: 'w-later', type: 'incremental', at: new Date(Date.now() - 60_000), verified: true },
  ]);
  await rebuildSchedules(svc.ctx);
  writer = await upsertApiKey(svc.ctx.db, 'scheduler-admin', ['schedules:write', 'backups:read']);
  reader = await upsertApiKey(svc.ctx.db, 'reader', ['backups:read', 'metrics:read']);
  app = createApp(svc.ctx);
});

afterAll(async () => {
  hook?.close();
  await closeCeremonyPools();
  await svc?.cleanup();
});

describe('GET and PUT /api/schedules', () => {
  it('lists the schedules the catalog mirrors', async () => {
    const res = await request(app).get('/api/schedules').set(auth(reader)).expect(200);
    const ids = (res.body.schedules as { id: string }[]).map((s) => s.id);
    expect(ids).toEqual(SCHEDULE_IDS);
  });

  it('changes a schedule in the catalog and in Redis, audited; needs schedules:write', async () => {
    await request(app)
      .put('/api/schedules/nightly-full')
      .set(auth(reader))
      .send({ pattern: '0 1 * * *' })
      .expect(403);
    const res = await request(app)
      .put('/api/schedules/nightly-full')
      .set(auth(writer))
      .send({ pattern: '15 1 * * *', tz: 'Europe/Rome' })
      .expect(200);
    expect(res.body).toMatchObject({
      id: 'nightly-full',
      pattern: '15 1 * * *',
      tz: 'Europe/Rome',
      editedBy: 'scheduler-admin',
    });
    const redis = (await svc.ctx.queues.queues[QUEUES.backup].getJobSchedulers()).find(
      (s) => s.key === 'nightly-full',
    );
    expect(redis).toMatchObject({ pattern: '15 1 * * *', tz: 'Europe/Rome' });
    // the audit row is written as the response finishes: wait for it rather than race it
    const rows = await waitFor(async () => {
      const r = await svc.ctx.db.query(
        `SELECT actor, method, status FROM audit_log WHERE resource = 'schedule:nightly-full' ORDER BY id`,
      );
      return r.rows.length > 0 && r.rows;
    });
    expect(rows).toEqual([{ actor: 'scheduler-admin', method: 'PUT', status: 200 }]);
  });

  it('answers 400 naming the field for a bad pattern, time zone or tier', async () => {
    const put = (id: string, body: object) =>
      request(app).put(`/api/schedules/${id}`).set(auth(writer)).send(body).expect(400);
    const field = (res: { body: { error: { details: { field: string; message: string }[] } } }) =>
      res.body.error.details[0]!;
    expect(field(await put('nightly-full', { pattern: '0 25 * * *' }))).toMatchObject({
      field: 'pattern',
      message: 'invalid cron pattern',
    });
    expect(field(await put('nightly-full', { tz: 'Moon/Base' }))).toMatchObject({ field: 'tz' });
    const tier = field(await put('wedding-cadence', { tiers: { tomorrow: { rpoMinutes: 5 } } }));
    expect(tier.field).toBe('tiers');
    expect(tier.message).toMatch(/tomorrow/);
    expect(field(await put('nightly-full', { tiers: { week: { rpoMinutes: 5 } } }))).toMatchObject({
      field: 'tiers',
    });
    await request(app).put('/api/schedules/nope').set(auth(writer)).send({ enabled: false }).expect(404);
  });

  it('edits the planner tiers, which the protection view then shows', async () => {
    await request(app)
      .put('/api/schedules/wedding-cadence')
      .set(auth(writer))
      .send({ tiers: { week: { filesEveryMinutes: 10 } } })
      .expect(200);
    const res = await request(app).get('/api/weddings/w-week/protection').set(auth(reader)).expect(200);
    expect(res.body.cadence.filesEverySeconds).toBe(Math.round(600 / res.body.cadence.factor));
    expect(res.body.cadence.databaseContinuous).toBe(true); // the week default, untouched by the edit
  });
});

describe('preview and protection', () => {
  it('previews the days ahead per tier with wedding counts and the fixed schedules runs', async () => {
    const res = await request(app).get('/api/schedules/preview?days=2').set(auth(reader)).expect(200);
    expect(res.body).toMatchObject({ days: 2, weddings: 2 });
    const tiers = res.body.tiers as { tier: string; weddings: number; files: number }[];
    expect(tiers.filter((t) => t.tier === 'week').map((t) => t.weddings)).toEqual([1, 1]);
    expect(tiers.find((t) => t.tier === 'week')!.files).toBeGreaterThanOrEqual(96);
    const purge = (res.body.schedules as { id: string; runs: unknown[] }[]).find(
      (s) => s.id === 'daily-purge',
    )!;
    expect(purge.runs).toHaveLength(2);
    await request(app).get('/api/schedules/preview?days=0').set(auth(reader)).expect(400);
  });

  it('shows one wedding: tier, cadence, newest good point, RPO now and the next job; 404 when unknown', async () => {
    const res = await request(app).get('/api/weddings/w-later/protection').set(auth(reader)).expect(200);
    expect(res.body).toMatchObject({ tier: 'later', rpoNow: { met: false, targetSeconds: 1560 * 60 } });
    expect(res.body.rpoNow.seconds).toBeGreaterThanOrEqual(3 * 86_400 - 5);
    expect(res.body.nextJob).toMatchObject({ component: 'files', state: 'scheduled' });
    expect(Date.parse(res.body.newestGoodPoint.at)).toBeLessThan(Date.now() - 2 * 86_400_000);
    const body = (await request(app).get('/api/weddings/w-nobody/protection').set(auth(reader)).expect(404))
      .body;
    expect(body.error.code).toBe('not_found');
  });
});

describe('SLA', () => {
  it('exposes per-tier ages and the alert as metrics', async () => {
    const text = (await request(app).get('/metrics').set(auth(reader)).expect(200)).text;
    expect(text).toMatch(/wedvault_sla_newest_verified_age_seconds\{tier="later"\} 2\d{5}/);
    expect(text).toMatch(/wedvault_sla_alert\{tier="later"\} 1/);
    expect(text).toMatch(/wedvault_sla_alert\{tier="week"\} 0/);
  });

  it('alerts once per breach, at error and to the webhook', async () => {
    const first = await checkSla(svc.ctx);
    expect(first.map((a) => a.tier)).toEqual(['later']);
    expect(await checkSla(svc.ctx)).toEqual([]); // still breached: no second alert
    expect(received).toEqual([
      expect.objectContaining({ kind: 'wedvault.sla.breach', tier: 'later', breached: 1 }),
    ]);
    // a fresh files point ends the breach; a later one alerts again
    await insertPoints(svc.ctx.db, [{ weddingId: 'w-later', type: 'files', at: new Date(), verified: true }]);
    expect(await checkSla(svc.ctx)).toEqual([]);
    const inTwoDays = () => new Date(Date.now() + 2 * 86_400_000);
    expect((await checkSla(svc.ctx, { clock: inTwoDays })).map((a) => a.tier)).toContain('later');
  });
});
