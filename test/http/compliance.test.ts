// Legal holds and forget on a real catalog, Redis and two local targets: the holds API and its
// refusals (each audited), the retention preview, `wedvault forget --dry-run`, and a purge job that
// forgets on every target everything but the newest point, a held point and a held wedding's point.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Worker } from 'bullmq';
import type { Express } from 'express';
import pg from 'pg';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertApiKey } from '../../src/catalog/api-keys.js';
import { createOperation } from '../../src/catalog/operations.js';
import { recordBackupOutput } from '../../src/catalog/record-backup.js';
import { upsertReplica } from '../../src/catalog/recovery-points.js';
import { runBackup } from '../../src/engine/backup.js';
import { replicateObjects } from '../../src/engine/replicate.js';
import { createApp } from '../../src/http/app.js';
import { runForget } from '../../src/producers/retention.js';
import { JOBS } from '../../src/queues/names.js';
import { PRIORITY } from '../../src/queues/priority.js';
import { startWorkers, stopWorkers } from '../../src/workers/run.js';
import { createTestService, PG_ADMIN_URL, waitFor, type TestService } from '../helpers/service.js';
import { tempDirsForFile } from '../helpers/temp.js';

const tempDir = tempDirsForFile();
const run = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '..', '..', 'bin', 'wedvault');

let svc: TestService;
let app: Express;
let workers: Worker[] = [];
let holder: string;
let reader: string;
let filesDir: string;
/** Four files points, oldest first: plain, with wedding 42's files, plain, plain (the newest). */
const points: string[] = [];

const auth = (key: string) => ({ Authorization: `Bearer ${key}` });

/** A files backup into the primary, recorded and replicated to the secondary: a point on both targets. */
async function filesPoint(): Promise<string> {
  const { config, ctx } = svc;
  const operationId = randomUUID();
  const out = await runBackup({
    storage: ctx.storage('local-primary'),
    masterKey: config.masterKey,
    type: 'files',
    components: [],
    operationId,
    sources: config.sources,
  });
  await createOperation(ctx.db, { id: operationId, type: 'files', priority: PRIORITY.later });
  await recordBackupOutput(ctx.db, out, {
    operationId,
    type: 'files',
    weddingId: null,
    primaryTarget: 'local-primary',
  });
  await replicateObjects(ctx.storage('local-primary'), ctx.storage('local-secondary'), out.objects);
  await upsertReplica(ctx.db, {
    recoveryPointId: out.snapshotId,
    target: 'local-secondary',
    state: 'replicated',
  });
  return out.snapshotId;
}

async function snapshotOn(target: string, id: string): Promise<boolean> {
  return svc.ctx
    .storage(target)
    .stat(`snapshots/${id}`)
    .then(() => true)
    .catch(() => false);
}

const onBothTargets = async (id: string) =>
  [await snapshotOn('local-primary', id), await snapshotOn('local-secondary', id)].join(',');

async function liveIds(): Promise<string[]> {
  const { rows } = await svc.ctx.db.query(`SELECT id FROM recovery_points WHERE deleted_at IS NULL`);
  return rows.map((r: { id: string }) => r.id).sort();
}

beforeAll(async () => {
  const dir = tempDir('wv-compliance-');
  filesDir = path.join(dir, 'files');
  mkdirSync(filesDir, { recursive: true });
  writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify({
      sources: {
        files: [
          { name: 'files', path: filesDir, scopes: [{ pattern: 'weddings/*/**', scope: 'wedding:{1}' }] },
        ],
      },
      retention: { files: { files: { keepLast: 1 } } },
    }),
  );
  svc = await createTestService({ WEDVAULT_CONFIG: path.join(dir, 'config.json') });
  // the source knows weddings 42 and 7, as POST /api/backups looks them up
  const source = new URL(svc.config.sources.postgres.url).pathname.slice(1);
  const adminDb = new pg.Client({ connectionString: PG_ADMIN_URL });
  await adminDb.connect();
  await adminDb.query(`CREATE DATABASE ${adminDb.escapeIdentifier(source)}`);
  await adminDb.end();
  const src = new pg.Client({ connectionString: svc.config.sources.postgres.url });
  await src.connect();
  await src.query(`CREATE TABLE weddings (id text PRIMARY KEY, wedding_date date)`);
  await src.query(`INSERT INTO weddings VALUES ('42', '2027-06-01'), ('7', '2027-07-01')`);
  await src.end();

  holder = await upsertApiKey(svc.ctx.db, 'holder', ['holds:write', 'backups:read']);
  reader = await upsertApiKey(svc.ctx.db, 'reader', ['backups:read']);
  app = createApp(svc.ctx);

  writeFileSync(path.join(filesDir, 'hero.txt'), 'the hero image\n');
  points.push(await filesPoint());
  mkdirSync(path.join(filesDir, 'weddings', '42'), { recursive: true });
  writeFileSync(path.join(filesDir, 'weddings', '42', 'vows.txt'), 'I promise\n');
  points.push(await filesPoint());
  rmSync(path.join(filesDir, 'weddings'), { recursive: true });
  points.push(await filesPoint());
  writeFileSync(path.join(filesDir, 'hero.txt'), 'the new hero image\n');
  points.push(await filesPoint());
}, 120_000);

afterAll(async () => {
  await stopWorkers(workers);
  await svc?.cleanup();
});

describe('legal holds API', () => {
  let mark = 0;
  const refusals: [number, string][] = [];
  const post = (key: string, body: unknown) =>
    request(app)
      .post('/api/compliance/holds')
      .set(auth(key))
      .send(body as object);

  beforeAll(async () => {
    const { rows } = await svc.ctx.db.query(`SELECT coalesce(max(id), 0)::int AS id FROM audit_log`);
    mark = rows[0].id;
  });

  it('refuses without a key, without the scope, and names the bad field', async () => {
    await request(app).post('/api/compliance/holds').send({ weddingId: '42', reason: 'x' }).expect(401);
    const forbidden = await post(reader, { weddingId: '42', reason: 'dispute' }).expect(403);
    expect(forbidden.body.error.details).toEqual({ required: 'holds:write' });
    const both = await post(holder, { weddingId: '42', recoveryPointId: points[0], reason: 'x' }).expect(400);
    expect(both.body.error.details[0].field).toBe('recoveryPointId');
    const neither = await post(holder, { reason: 'x' }).expect(400);
    expect(neither.body.error.details[0].field).toBe('weddingId');
    const past = await post(holder, { weddingId: '42', reason: 'x', until: '2020-01-01T00:00:00Z' }).expect(
      400,
    );
    expect(past.body.error.details[0].field).toBe('until');
    const noReason = await post(holder, { weddingId: '42' }).expect(400);
    expect(noReason.body.error.details[0].field).toBe('reason');
    refusals.push([401, '/api/compliance/holds'], [403, '/api/compliance/holds']);
    refusals.push(...[1, 2, 3, 4].map(() => [400, '/api/compliance/holds'] as [number, string]));
  });

  it('answers 404 for an unknown wedding, recovery point or hold', async () => {
    const wedding = await post(holder, { weddingId: '999', reason: 'x' }).expect(404);
    expect(wedding.body.error.details).toEqual({ field: 'weddingId' });
    const point = await post(holder, { recoveryPointId: 'nope', reason: 'x' }).expect(404);
    expect(point.body.error.details).toEqual({ field: 'recoveryPointId' });
    const unknown = randomUUID();
    await request(app).delete(`/api/compliance/holds/${unknown}`).set(auth(holder)).expect(404);
    await request(app).delete('/api/compliance/holds/not-a-uuid').set(auth(holder)).expect(400);
    refusals.push([404, '/api/compliance/holds'], [404, '/api/compliance/holds']);
    refusals.push([404, `/api/compliance/holds/${unknown}`], [400, '/api/compliance/holds/not-a-uuid']);
  });

  it('audits every refusal', async () => {
    const rows = await waitFor(async () => {
      const r = await svc.ctx.db.query(
        `SELECT status, path FROM audit_log WHERE id > $1 AND path LIKE '/api/compliance/%'`,
        [mark],
      );
      return r.rows.length >= refusals.length && r.rows;
    });
    const seen = rows.map((r: { status: number; path: string }) => `${r.status} ${r.path}`).sort();
    expect(seen).toEqual(refusals.map(([s, p]) => `${s} ${p}`).sort());
  });
});

describe('holds, the preview and forget', () => {
  let pointHold: string;
  let weddingHold: string;

  it('places a hold on a point and one on a wedding, lists them, audits them', async () => {
    const a = await request(app)
      .post('/api/compliance/holds')
      .set(auth(holder))
      .send({ recoveryPointId: points[0], reason: 'tax audit' })
      .expect(201);
    expect(a.body).toMatchObject({
      recoveryPointId: points[0],
      weddingId: null,
      reason: 'tax audit',
      until: null,
    });
    pointHold = a.body.id;
    // lapses in ten and a half days: the preview shows wedding 42's point going on day 11
    const until = new Date(Date.now() + 10.5 * 86_400_000).toISOString();
    const b = await request(app)
      .post('/api/compliance/holds')
      .set(auth(holder))
      .send({ weddingId: '42', reason: 'dispute', until })
      .expect(201);
    weddingHold = b.body.id;
    expect(new Date(b.body.until).toISOString()).toBe(until);
    const list = await request(app).get('/api/compliance/holds').set(auth(reader)).expect(200);
    expect(list.body.holds.map((h: { id: string }) => h.id)).toEqual([pointHold, weddingHold]);
    const audited = await waitFor(async () => {
      const r = await svc.ctx.db.query(`SELECT resource FROM audit_log WHERE status = 201 ORDER BY id`);
      return r.rows.length >= 2 && r.rows;
    });
    expect(audited).toEqual([{ resource: `hold:${pointHold}` }, { resource: `hold:${weddingHold}` }]);
  });

  it('previews the policy and what expires today', async () => {
    const res = await request(app).get('/api/compliance/retention').set(auth(reader)).expect(200);
    expect(res.body.policy).toEqual({ files: { files: { keepLast: 1 } } });
    expect(res.body.holds).toHaveLength(2);
    const days = res.body.expiries.map((e: { date: string; points: { id: string }[] }) => ({
      day: Math.round((Date.parse(e.date) - Date.now()) / 86_400_000) + 0, // not -0
      ids: e.points.map((p) => p.id),
    }));
    expect(days).toEqual([
      { day: 0, ids: [points[2]] },
      { day: 11, ids: [points[1]] },
    ]);
    expect(res.body.expiries[0].points[0].reasons).toEqual(['files/files: no rule keeps it (keepLast 1)']);
  });

  it('wedvault forget --dry-run prints every point with its verdict and removes nothing', async () => {
    const { stdout } = await run(BIN, ['forget', '--dry-run'], { env: { ...process.env, ...svc.env } });
    const line = (id: string) => stdout.split('\n').find((l) => l.includes(id)) ?? '';
    expect(line(points[3]!)).toMatch(/^keep\s+\S+\s+\S+\s+files\/files: last$/);
    expect(line(points[2]!)).toMatch(/^forget\s+.*files\/files: no rule keeps it \(keepLast 1\)$/);
    expect(line(points[1]!)).toMatch(
      new RegExp(`^keep\\s+.*held by hold ${weddingHold} \\(wedding 42\\): dispute$`),
    );
    expect(line(points[0]!)).toMatch(
      new RegExp(`^keep\\s+.*held by hold ${pointHold} \\(this point\\): tax audit$`),
    );
    expect(stdout.trim().split('\n').at(-1)).toBe('3 kept, 1 would be forgotten (dry run: nothing removed)');
    expect(await liveIds()).toEqual([...points].sort());
    expect(await onBothTargets(points[2]!)).toBe('true,true');
  }, 60_000);

  it("a purge job forgets on every target; the held point and the held wedding's point survive", async () => {
    workers = startWorkers(svc.ctx, { queues: ['purge'], concurrency: 1 });
    await svc.ctx.queues.queues.purge.add(JOBS.purge, { reason: 'test' });
    const runRow = await waitFor(async () => {
      const r = await svc.ctx.db.query(`SELECT * FROM purge_runs WHERE state <> 'running'`);
      return r.rows[0];
    });
    expect(runRow).toMatchObject({ state: 'completed', kept: 3 });
    expect(runRow.forgotten.map((f: { id: string }) => f.id)).toEqual([points[2]]);
    expect(await liveIds()).toEqual([points[0], points[1], points[3]].sort());
    expect(await onBothTargets(points[2]!)).toBe('false,false');
    for (const id of [points[0]!, points[1]!, points[3]!]) expect(await onBothTargets(id)).toBe('true,true');
    const list = await request(app).get('/api/backups').set(auth(reader)).expect(200);
    expect(list.body.recoveryPoints.map((p: { id: string }) => p.id)).not.toContain(points[2]);
  }, 60_000);

  it('a released hold lets its point go; forgetting again changes nothing', async () => {
    await request(app).delete(`/api/compliance/holds/${pointHold}`).set(auth(holder)).expect(204);
    const list = await request(app).get('/api/compliance/holds').set(auth(reader)).expect(200);
    expect(list.body.holds.map((h: { id: string }) => h.id)).toEqual([weddingHold]);
    const first = await runForget(svc.ctx);
    expect(first.forgotten).toEqual([points[0]]);
    expect(await onBothTargets(points[0]!)).toBe('false,false');
    expect(await onBothTargets(points[1]!)).toBe('true,true');
    const again = await runForget(svc.ctx);
    expect(again).toMatchObject({ forgotten: [], snapshotsRemoved: [] });

    await request(app).delete(`/api/compliance/holds/${weddingHold}`).set(auth(holder)).expect(204);
    expect((await runForget(svc.ctx)).forgotten).toEqual([points[1]]);
    expect(await liveIds()).toEqual([points[3]]);
    expect(await onBothTargets(points[1]!)).toBe('false,false');
  });
});
