// The cadence planner on a real catalog, source and Redis with a controllable clock: which weddings
// are due, priorities per tier, duplicate triggers collapsing (and released when the job ends), two
// instances installing each schedule once, and scheduled heavy work held outside its off-peak window.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker, type Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editSchedule, listSchedules } from '../../src/catalog/schedules.js';
import { createContext } from '../../src/context.js';
import { closeCeremonyPools } from '../../src/engine/postgres/ceremony.js';
import { runCadenceTick } from '../../src/producers/cadence.js';
import { rebuildSchedules } from '../../src/producers/schedules.js';
import { createRedis } from '../../src/queues/connection.js';
import { QUEUES } from '../../src/queues/names.js';
import { PRIORITY } from '../../src/queues/priority.js';
import { startWorkers, stopWorkers } from '../../src/workers/run.js';
import { SCHEDULE_IDS, createWeddingsSource, insertPoints } from '../helpers/cadence.js';
import { createTestService, waitFor, type TestService } from '../helpers/service.js';
import { tempDirsForFile } from '../helpers/temp.js';

const tempDir = tempDirsForFile();
const NOW = new Date('2026-06-02T10:00:00Z'); // a Tuesday, out of the test's season
const ago = (min: number) => new Date(NOW.getTime() - min * 60_000);
const hhmm = (d: Date) => d.toISOString().slice(11, 16);
// the heavy-work window opens two hours from the real clock (the worker asks the real clock)
const opens = new Date(Math.ceil((Date.now() + 2 * 3_600_000) / 60_000) * 60_000);
let svc: TestService;

beforeAll(async () => {
  const dir = tempDir('wv-cadence-');
  const config = path.join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      sources: { postgres: { weddingRegion: 'weddings.region' } },
      scheduling: {
        jobs: 'per-wedding',
        seasons: { default: { months: [12], factor: 2 } },
        offPeak: {
          database: {
            tz: 'UTC',
            windows: [{ start: hhmm(opens), end: hhmm(new Date(opens.getTime() + 3_600_000)) }],
          },
        },
      },
    }),
  );
  svc = await createTestService({ WEDVAULT_CONFIG: config, WEDVAULT_WEDDING_TIMEZONE: 'weddings.tz' });
  await createWeddingsSource(svc.config.sources.postgres.url, [
    { id: 'w-week', date: '2026-06-05', tz: 'Europe/Rome' },
    { id: 'w-month', date: '2026-06-20' },
    { id: 'w-later', date: '2027-01-01' },
    { id: 'w-after', date: '2026-05-25', tz: 'America/Chicago' },
    { id: 'w-none', date: null },
  ]);
  await insertPoints(svc.ctx.db, [
    { weddingId: 'w-week', type: 'files', at: ago(20) },
    { weddingId: 'w-week', type: 'incremental', at: ago(30) },
    { weddingId: 'w-later', type: 'files', at: ago(120) },
    { weddingId: 'w-later', type: 'incremental', at: ago(120) },
    { weddingId: 'w-after', type: 'files', at: ago(10) },
    { weddingId: 'w-after', type: 'incremental', at: ago(180) },
  ]);
});

afterAll(async () => {
  await closeCeremonyPools();
  await svc?.cleanup();
});

const waitingBackups = async () => {
  const jobs = await svc.ctx.queues.queues[QUEUES.backup].getJobs(['prioritized', 'waiting']);
  return jobs
    .filter((j) => String(j.data.scheduleId ?? '').startsWith('cadence-'))
    .map((j) => `${j.data.weddingId}/${j.data.components[0]}@${j.opts.priority}`)
    .sort();
};

describe('schedules', () => {
  it('two instances starting together install each schedule once', async () => {
    const other = await createContext(svc.config, { log: svc.ctx.log });
    try {
      await Promise.all([rebuildSchedules(svc.ctx), rebuildSchedules(other), rebuildSchedules(svc.ctx)]);
    } finally {
      await other.close();
    }
    const ids: string[] = [];
    let scheduledJobs = 0;
    for (const q of [QUEUES.backup, QUEUES.verify, QUEUES.purge, QUEUES.plan, QUEUES.restore]) {
      const queue = svc.ctx.queues.queues[q];
      ids.push(...(await queue.getJobSchedulers()).map((s) => s.key));
      scheduledJobs += (await queue.getJobs(['delayed', 'waiting', 'prioritized'])).length;
    }
    expect(ids.sort()).toEqual(SCHEDULE_IDS);
    expect(scheduledJobs).toBe(SCHEDULE_IDS.length); // one next run each, no duplicates
    expect((await listSchedules(svc.ctx.db)).map((s) => s.id)).toHaveLength(SCHEDULE_IDS.length);
  });

  it('keeps an API edit across a rebuild', async () => {
    await editSchedule(svc.ctx.db, 'weekly-drill', { pattern: '30 1 * * 3', tz: 'Europe/Paris' }, 'test');
    await rebuildSchedules(svc.ctx);
    const drill = (await svc.ctx.queues.queues[QUEUES.verify].getJobSchedulers()).find(
      (s) => s.key === 'weekly-drill',
    );
    expect(drill).toMatchObject({ pattern: '30 1 * * 3', tz: 'Europe/Paris' });
    // the start-up rebuild also leaves nothing of the edit behind in Redis when disabled
    await editSchedule(svc.ctx.db, 'weekly-drill', { enabled: false }, 'test');
    await rebuildSchedules(svc.ctx);
    expect((await svc.ctx.queues.queues[QUEUES.verify].getJobSchedulers()).map((s) => s.key)).toEqual([
      'weekly-full-verify',
    ]);
  });
});

describe('the planner', () => {
  it('enqueues the due backups of each wedding at its tier priority', async () => {
    const tick = await runCadenceTick(svc.ctx, { clock: () => NOW });
    expect(tick).toMatchObject({ weddings: 5, due: 6 });
    expect(await waitingBackups()).toEqual([
      `w-after/database@${PRIORITY.after}`, // 3 h old, after-tier database every 2 h
      `w-month/database@${PRIORITY.month}`, // never backed up
      `w-month/files@${PRIORITY.month}`,
      `w-none/database@${PRIORITY.later}`, // no ceremony date: later
      `w-none/files@${PRIORITY.later}`,
      `w-week/files@${PRIORITY.week}`, // 20 min old, week-tier files every 15 min
    ]);
  });

  it('collapses duplicate triggers into one waiting backup per wedding and type, released when the job ends', async () => {
    for (let i = 0; i < 3; i++) await runCadenceTick(svc.ctx, { clock: () => NOW });
    expect(await waitingBackups()).toHaveLength(6);

    // take the first job (w-week's files, priority 1) and finish it without a backup
    const worker = new Worker(QUEUES.backup, null, {
      connection: createRedis(svc.config.redisUrl),
      prefix: svc.ctx.queues.prefix,
      autorun: false,
    });
    try {
      const token = randomUUID();
      const job = (await worker.getNextJob(token)) as Job;
      expect(job.data).toMatchObject({ weddingId: 'w-week', components: ['files'] });
      await runCadenceTick(svc.ctx, { clock: () => NOW });
      expect(await waitingBackups()).toHaveLength(5); // active: a new trigger still collapses into it
      await job.moveToCompleted({}, token, false);
    } finally {
      await worker.close();
    }
    // still due (no new point): the next tick queues it again under a new job id
    await runCadenceTick(svc.ctx, { clock: () => NOW });
    expect(await waitingBackups()).toHaveLength(6);
    expect(await waitingBackups()).toContain(`w-week/files@${PRIORITY.week}`);
  });

  it('coalesces the due backups into one whole-source job per component when configured', async () => {
    const queue = svc.ctx.queues.queues[QUEUES.backup];
    await queue.drain();
    const scheduling = { ...svc.config.scheduling, jobs: 'coalesced' as const };
    const coalesced = { ...svc.ctx, config: { ...svc.config, scheduling } };
    for (let i = 0; i < 2; i++) await runCadenceTick(coalesced, { clock: () => NOW });
    const jobs = (await queue.getJobs(['prioritized', 'waiting'])).filter((j) =>
      j.data.scheduleId?.startsWith('cadence-'),
    );
    expect(jobs.map((j) => [j.data.components[0], j.data.weddingId, j.opts.priority]).sort()).toEqual([
      ['database', undefined, PRIORITY.month], // month, after and later weddings due: the nearest tier's priority
      ['files', undefined, PRIORITY.week],
    ]);
    await queue.drain();
  });

  it('moves a wedding to the next tier as days pass', async () => {
    await svc.ctx.queues.queues[QUEUES.backup].drain();
    // 23:59 CDT on 7 June: 13 days after the ceremony in Chicago → still `after`
    const sunday = new Date('2026-06-08T04:59:00Z');
    await runCadenceTick(svc.ctx, { clock: () => sunday });
    expect(await waitingBackups()).toContain(`w-after/files@${PRIORITY.after}`);
    await svc.ctx.queues.queues[QUEUES.backup].drain();
    // 00:00 CDT on 9 June, 15 days after: the after tier has ended
    await runCadenceTick(svc.ctx, { clock: () => new Date('2026-06-09T05:00:00Z') });
    expect(await waitingBackups()).toContain(`w-after/files@${PRIORITY.later}`);
    await svc.ctx.queues.queues[QUEUES.backup].drain();
  });
});

describe('off-peak windows for scheduled heavy work', () => {
  it('holds a scheduled full backup until the window opens', async () => {
    await insertPoints(svc.ctx.db, [{ weddingId: null, type: 'full', at: new Date(Date.now() - 3_600_000) }]);
    const workers = startWorkers(svc.ctx, { queues: [QUEUES.backup], concurrency: 1 });
    try {
      const queue = svc.ctx.queues.queues[QUEUES.backup];
      const job = await queue.add(
        'backup',
        { type: 'full', components: [], scheduleId: 'nightly-full' },
        { priority: 4 },
      );
      const held = await waitFor(
        async () => ((await queue.getJobState(job.id!)) === 'delayed' ? queue.getJob(job.id!) : undefined),
        10_000,
      );
      // moved to delayed until the window opens (the delay counts from the move, not from the add)
      expect(Math.abs(held!.timestamp + held!.delay - opens.getTime())).toBeLessThan(2_000);
    } finally {
      await stopWorkers(workers);
    }
  });

  it('runs it outside the window, saying why, when the RPO would be missed first', async () => {
    await svc.ctx.db.query(`UPDATE recovery_points SET deleted_at = now() WHERE wedding_id IS NULL`);
    const workers = startWorkers(svc.ctx, { queues: [QUEUES.backup], concurrency: 1 });
    try {
      const queue = svc.ctx.queues.queues[QUEUES.backup];
      const job = await queue.add(
        'backup',
        { type: 'full', components: ['database'], scheduleId: 'nightly-full' },
        { priority: 4 },
      );
      const logs = await waitFor(async () => {
        const { logs } = await queue.getJobLogs(job.id!);
        return logs.length > 0 && logs;
      }, 10_000);
      expect(logs[0]).toMatch(
        /outside the off-peak window of database, run anyway: wedding w-\w+'s RPO would be missed at /,
      );
    } finally {
      await stopWorkers(workers);
    }
  });
});
