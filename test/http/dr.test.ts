import type { Worker } from 'bullmq';
import type { Express } from 'express';
import pg from 'pg';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finishDrill, startDrill } from '../../src/catalog/dr.js';
import { listReplicas } from '../../src/catalog/recovery-points.js';
import { SCENARIOS } from '../../src/policy/dr-plans.js';
import { stopWorkers } from '../../src/workers/run.js';
import { recoveryService } from '../helpers/recovery-service.js';
import { dbUrl, dropDatabase, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
let app: Express;
let workers: Worker[];
let admin: string;
let pointId: string;
const restored = `wv_test_dr_${process.pid}`;

beforeAll(async () => {
  ({ svc, app, workers, admin, pointId } = await recoveryService({}, ['backup', 'replicate', 'restore']));
  await waitFor(async () => {
    const r = await listReplicas(svc.ctx.db, [pointId]);
    return r.length === 2 && r.every((x) => x.state === 'replicated');
  });
}, 120_000);

afterAll(async () => {
  await stopWorkers(workers ?? []);
  await dropDatabase(restored);
  await svc?.cleanup();
});

const auth = () => ({ Authorization: `Bearer ${admin}` });

async function catalogRows() {
  const q = async (sql: string) => (await svc.ctx.db.query(sql)).rows;
  return {
    points:
      await q(`SELECT id, operation_id, type, wedding_id, primary_target, consistent_time, lsn, files, bytes_read,
                            bytes_new, bytes_stored, objects, checksum, summary FROM recovery_points ORDER BY id`),
    replicas: await q(
      `SELECT recovery_point_id, target, state, objects, bytes, checksum FROM replicas ORDER BY 1, 2`,
    ),
    weddings: await q(`SELECT wedding_id, recovery_point_id FROM backed_up_weddings ORDER BY 1`),
  };
}

describe('disaster recovery over REST', () => {
  it('lists a built-in plan per scenario with steps, copies and an RTO estimate from the last drill', async () => {
    const res = await request(app).get('/api/dr/plans').set(auth()).expect(200);
    expect(res.body.plans.map((p: { id: string }) => p.id)).toEqual([...SCENARIOS]);
    const lost = res.body.plans[1];
    expect(lost).toMatchObject({ copies: ['local-secondary'], point: { id: pointId } });
    expect(lost.rto.estimateS).toBeNull();
    await startDrill(svc.ctx.db, {
      id: '00000000-0000-4000-8000-000000000001',
      scenario: 'primary-target-lost',
      trigger: 'demand',
    });
    await finishDrill(svc.ctx.db, '00000000-0000-4000-8000-000000000001', {
      state: 'completed',
      rtoS: 2,
      bytes: 1,
      result: {},
    });
    const again = await request(app).get('/api/dr/plans/primary-target-lost').set(auth()).expect(200);
    expect(again.body.rto.estimateS).toBeGreaterThan(0);
    expect(again.body.rto.basis).toMatch(/last drill/);
    await request(app).get('/api/dr/plans/no-such-plan').set(auth()).expect(404);
  });

  it('keeps custom plans (400 naming a bad field)', async () => {
    const bad = await request(app)
      .post('/api/dr/plans')
      .set(auth())
      .send({ name: 'x', scenario: 'meteor' })
      .expect(400);
    expect(bad.body.error.details[0].field).toBe('scenario');
    const made = await request(app)
      .post('/api/dr/plans')
      .set(auth())
      .send({
        name: 'lose the secondary',
        scenario: 'primary-target-lost',
        params: { lostTarget: 'local-secondary' },
      })
      .expect(201);
    expect(made.body).toMatchObject({
      name: 'lose the secondary',
      builtIn: false,
      copies: ['local-primary'],
    });
    const got = await request(app).get(`/api/dr/plans/${made.body.id}`).set(auth()).expect(200);
    expect(got.body.steps).toEqual(made.body.steps);
    const list = await request(app).get('/api/dr/plans').set(auth()).expect(200);
    expect(list.body.plans.at(-1).id).toBe(made.body.id);
  });

  it('rebuilds the catalog from the repositories: the same rows as before', async () => {
    const before = await catalogRows();
    expect(before.points).toHaveLength(1);
    expect(before.weddings.length).toBeGreaterThan(0);
    await svc.ctx.db.query(
      `DELETE FROM backed_up_weddings; DELETE FROM replicas; DELETE FROM recovery_points`,
    );
    const res = await request(app)
      .post('/api/dr/plans/catalog-lost/execute')
      .set(auth())
      .send({})
      .expect(200);
    expect(res.body.rebuilt).toMatchObject({ points: 1, replicas: 2, seen: 1 });
    expect(await catalogRows()).toEqual(before);
  });

  it('executes a plan as a recovery job, validates the result, and drills it with measured RTO', async () => {
    const res = await request(app)
      .post('/api/dr/plans/primary-target-lost/execute')
      .set(auth())
      .send({ targetDatabase: dbUrl(restored) })
      .expect(202);
    const id = res.body.recoveryId;
    const done = await waitFor(async () => {
      const r = (await request(app).get(`/api/backups/recovery/${id}`).set(auth())).body;
      if (r.state === 'failed') throw new Error(JSON.stringify(r.error));
      return r.state === 'completed' && r;
    }, 60_000);
    expect(done).toMatchObject({ scenario: 'primary-target-lost', recoveryPointId: pointId });
    const v = await request(app).post(`/api/dr/recoveries/${id}/validate`).set(auth()).expect(200);
    expect(v.body).toMatchObject({ ok: true, problems: [] });
    const c = new pg.Client({ connectionString: dbUrl(restored) });
    await c.connect();
    expect((await c.query(`SELECT count(*)::int AS n FROM weddings`)).rows[0].n).toBeGreaterThan(0);
    await c.end();

    const drill = await request(app)
      .post('/api/dr/drills')
      .set(auth())
      .send({ scenario: 'database-lost' })
      .expect(202);
    const drills = await waitFor(async () => {
      const r = await request(app).get('/api/dr/drills?scenario=database-lost').set(auth()).expect(200);
      return r.body.drills[0]?.state !== 'running' && r.body.drills;
    }, 60_000);
    expect(drills[0]).toMatchObject({ id: drill.body.drillId, state: 'completed', trigger: 'demand' });
    expect(drills[0].rtoS).toBeGreaterThan(0);
    expect(drills[0].bytes).toBeGreaterThan(0);
    const plan = await request(app).get('/api/dr/plans/database-lost').set(auth()).expect(200);
    expect(plan.body.rto.estimateS).toBeGreaterThan(0);
  });

  it('runs a scheduled drill from its scheduler’s job ({drill}) and records it', async () => {
    await svc.ctx.queues.queues.restore.add('restore', { drill: 'catalog-lost' }, { priority: 5 });
    const drill = await waitFor(async () => {
      const r = await request(app).get('/api/dr/drills?scenario=catalog-lost').set(auth()).expect(200);
      return r.body.drills.find(
        (d: { trigger: string; state: string }) => d.trigger === 'schedule' && d.state !== 'running',
      );
    });
    expect(drill).toMatchObject({ state: 'completed', rpoS: 0, result: { seen: 1, points: 0 } });
  });
});
