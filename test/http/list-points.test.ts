// GET /api/backups?meets321=…: the filter fills the page from every point, not from the newest `limit` only.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { upsertApiKey } from '../../src/catalog/api-keys.js';
import { recordRecoveryPoint, upsertReplica } from '../../src/catalog/recovery-points.js';
import { createApp } from '../../src/http/app.js';
import { createTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let app: Express;
let reader: string;
const TARGETS = ['disk-a', 'disk-b', 'cloud'];
/** Newest first; every fifth point (p04, p09, …) has all three copies verified. */
const POINTS = Array.from({ length: 23 }, (_, i) => ({
  id: `p${String(i).padStart(2, '0')}`,
  meets: i % 5 === 4,
}));

beforeAll(async () => {
  const dir = path.join((await import('node:os')).tmpdir(), `wv-list-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const config = path.join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      targets: TARGETS.map((name) => ({
        name,
        type: 'local',
        path: path.join(dir, name),
        labels: name === 'cloud' ? { media: 'object', location: 'eu', offsite: true } : undefined,
      })),
    }),
  );
  svc = await createTestService({ WEDVAULT_CONFIG: config });
  svc.cleanup = ((done) => async () => {
    await done();
    const { rm } = await import('node:fs/promises');
    await rm(dir, { recursive: true, force: true });
  })(svc.cleanup);
  reader = await upsertApiKey(svc.ctx.db, 'reader', ['backups:read']);
  app = createApp(svc.ctx);
  const base = new Date('2026-06-01T12:00:00Z');
  for (const [i, p] of POINTS.entries()) {
    await recordRecoveryPoint(svc.ctx.db, {
      id: p.id,
      operationId: null,
      type: 'files',
      weddingId: null,
      primaryTarget: 'disk-a',
      consistentTime: null,
      lsn: null,
      files: 1,
      bytesRead: 1,
      bytesNew: 1,
      bytesStored: 1,
      objects: [],
      checksum: 'x',
      summary: {},
    });
    for (const target of TARGETS) {
      const state = p.meets || target === 'disk-a' ? 'verified' : 'pending';
      await upsertReplica(svc.ctx.db, { recoveryPointId: p.id, target, state });
    }
    // p00 newest; p10 and p11 share their time (then newest is the greater id), so a page that ends
    // between them must go on with the other one
    const age = i === 11 ? 10 : i;
    await svc.ctx.db.query(
      `UPDATE recovery_points SET created_at = $2::timestamptz - make_interval(mins => $3::int) WHERE id = $1`,
      [p.id, base, age],
    );
  }
}, 60_000);

afterAll(async () => {
  await svc?.cleanup();
});

const list = async (query: string): Promise<string[]> => {
  const res = await request(app)
    .get(`/api/backups?${query}`)
    .set('Authorization', `Bearer ${reader}`)
    .expect(200);
  return res.body.recoveryPoints.map((p: { id: string; meets321: boolean }) => p.id);
};

const meeting = POINTS.filter((p) => p.meets).map((p) => p.id);
const failing = POINTS.filter((p) => !p.meets)
  .map((p) => p.id)
  .map((id) => (id === 'p10' ? 'p11' : id === 'p11' ? 'p10' : id));

it('meets321=true fills the page with matching points older than the newest page', async () => {
  expect(meeting).toEqual(['p04', 'p09', 'p14', 'p19']);
  expect(await list('meets321=true&limit=3')).toEqual(['p04', 'p09', 'p14']);
  expect(await list('meets321=true&limit=2')).toEqual(['p04', 'p09']);
  expect(await list('meets321=true')).toEqual(meeting);
});

it('meets321=false pages past matching points, ties included, without repeats or gaps', async () => {
  expect(await list('meets321=false&limit=4')).toEqual(failing.slice(0, 4));
  // the first page of 11 ends at p11, inside its tie with p10: the next one starts at p10
  expect(await list('meets321=false&limit=11')).toEqual(failing.slice(0, 11));
  expect(failing.slice(8, 11)).toEqual(['p11', 'p10', 'p12']);
  expect(await list('meets321=false&limit=1000')).toEqual(failing);
});

it('without the filter, the newest `limit` points as before', async () => {
  expect(await list('limit=5')).toEqual(POINTS.slice(0, 5).map((p) => p.id));
  expect((await list('limit=12')).slice(10)).toEqual(['p11', 'p10']);
  expect(await list('')).toHaveLength(POINTS.length);
});
