// Event triggers with a real source database (its own logical slot) and Redis: many changed rows or
// a big upload for one wedding bring its backup forward; repeats collapse into the waiting job.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDatabase } from '../../src/catalog/db.js';
import { closeCeremonyPools } from '../../src/engine/postgres/ceremony.js';
import { eventTriggers } from '../../src/policy/event-triggers.js';
import { jobIds } from '../../src/queues/names.js';
import { PRIORITY } from '../../src/queues/priority.js';
import { checkEventTriggers } from '../../src/workers/events.js';
import { createTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let source: pg.Client;
const dir = mkdtempSync(path.join(tmpdir(), 'wv-events-'));
const files = path.join(dir, 'files');

beforeAll(async () => {
  mkdirSync(path.join(files, 'weddings', 'w2'), { recursive: true });
  const config = {
    sources: {
      files: [{ name: 'media', path: files, scopes: [{ pattern: 'weddings/*/**', scope: 'wedding:{1}' }] }],
    },
    load: { events: { rows: 20, megabytes: 1, slot: `wv_events_${randomBytes(4).toString('hex')}` } },
    scheduling: { jobs: 'per-wedding' },
  };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  svc = await createTestService({ WEDVAULT_CONFIG: path.join(dir, 'config.json') });
  await ensureDatabase(svc.config.sources.postgres.url);
  source = new pg.Client({ connectionString: svc.config.sources.postgres.url });
  await source.connect();
  await source.query(`CREATE TABLE weddings (wedding_id text PRIMARY KEY, wedding_date date NOT NULL);
    INSERT INTO weddings VALUES ('w1', current_date + 3), ('w2', current_date + 200), ('w3', current_date + 40);
    CREATE TABLE guests (id serial PRIMARY KEY, wedding_id text NOT NULL REFERENCES weddings, name text)`);
});

afterAll(async () => {
  await source?.end();
  await closeCeremonyPools();
  await svc?.cleanup();
});

const guests = (wedding: string, n: number) =>
  source.query(
    `INSERT INTO guests (wedding_id, name) SELECT $1, 'guest ' || i FROM generate_series(1, $2) i`,
    [wedding, n],
  );

it('the decision: thresholds per wedding, rows and megabytes apart', () => {
  const rows = new Map([
    ['a', 19],
    ['b', 20],
  ]);
  const bytes = new Map([['a', 1_500_000]]);
  expect(eventTriggers(rows, bytes, { rows: 20, megabytes: 1 })).toEqual([
    { weddingId: 'a', component: 'files', why: '1.5 MB uploaded' },
    { weddingId: 'b', component: 'database', why: '20 rows changed' },
  ]);
  expect(eventTriggers(rows, bytes, { rows: 0, megabytes: 0 })).toEqual([]);
});

it('brings a wedding’s backup forward on many changed rows, once, and tallies small changes', async () => {
  const queue = svc.ctx.queues.queues.backup;
  expect(await checkEventTriggers(svc.ctx)).toEqual([]); // creates the slot; nothing counted yet
  await guests('w1', 30);
  await guests('w2', 5);
  const first = await checkEventTriggers(svc.ctx);
  expect(first.map((t) => [t.weddingId, t.component, t.why, t.added])).toEqual([
    ['w1', 'database', '30 rows changed', true],
  ]);
  const job = (await queue.getJob(first[0]!.jobId))!;
  expect(job.data).toMatchObject({
    type: 'incremental',
    components: ['database'],
    weddingId: 'w1',
    trigger: 'event',
  });
  expect(job.priority).toBe(PRIORITY.week);

  // more changes while that backup waits: collapsed into it
  await source.query(`UPDATE guests SET name = name || '!' WHERE wedding_id = 'w1'`);
  const again = await checkEventTriggers(svc.ctx);
  expect(again.map((t) => [t.weddingId, t.jobId, t.added])).toEqual([['w1', job.id, false]]);
  expect(await queue.count()).toBe(1);

  // w2's 5 rows and then 16 more add up past 20 across passes
  await guests('w2', 16);
  const w2 = await checkEventTriggers(svc.ctx);
  expect(w2.map((t) => [t.weddingId, t.why])).toEqual([['w2', '21 rows changed']]);
});

it('brings a wedding’s backup forward on a big upload, and pulls a delayed one forward', async () => {
  const queue = svc.ctx.queues.queues.backup;
  // the planner's files backup for w3, deferred for an hour
  const planned = await queue.add(
    'backup',
    { type: 'files', components: ['files'], weddingId: 'w3', scheduleId: 'cadence-month' },
    {
      delay: 3_600_000,
      priority: PRIORITY.month,
      deduplication: { id: jobIds.weddingBackup('w3', 'files') },
    },
  );
  writeFileSync(path.join(files, 'weddings', 'w2', 'small.jpg'), randomBytes(200_000));
  mkdirSync(path.join(files, 'weddings', 'w3'), { recursive: true });
  writeFileSync(path.join(files, 'weddings', 'w3', 'video.mp4'), randomBytes(1_200_000));
  const done = await checkEventTriggers(svc.ctx);
  expect(done.map((t) => [t.weddingId, t.component, t.why, t.jobId, t.added])).toEqual([
    ['w3', 'files', '1.2 MB uploaded', planned.id, false],
  ]);
  // due now: a worker's next look at the delayed set moves it to the priority queue
  expect((await queue.getJob(planned.id!))!.delay).toBe(0);
  // the same files are not counted twice
  expect(await checkEventTriggers(svc.ctx)).toEqual([]);
});

it('in coalesced mode, brings the whole-source backup forward instead', async () => {
  const queue = svc.ctx.queues.queues.backup;
  await queue.obliterate({ force: true });
  const config = svc.ctx.config;
  svc.ctx.config = { ...config, scheduling: { ...config.scheduling, jobs: 'coalesced' } };
  try {
    await guests('w1', 25);
    await guests('w3', 25);
    const done = await checkEventTriggers(svc.ctx);
    expect(done.map((t) => [t.weddingId, t.added])).toEqual([
      ['w1', true],
      ['w3', false], // the same whole-source database backup
    ]);
    expect(await queue.count()).toBe(1);
    const job = (await queue.getJob(done[0]!.jobId))!;
    expect(job.data.weddingId).toBeUndefined();
    expect(job.data.requestedBy).toBe('event: wedding w1: 25 rows changed');
  } finally {
    svc.ctx.config = config;
  }
});
