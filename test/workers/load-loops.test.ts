// The periodic loops as the service starts them: two instances, one sweep at a time, and an
// overdue job promoted ahead of every tier.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PRIORITY } from '../../src/queues/priority.js';
import { startLoadLoops } from '../../src/workers/load-loops.js';
import { createTestService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'wv-loops-')), 'config.json');
  writeFileSync(
    file,
    JSON.stringify({ load: { aging: { boundMinutes: { later: 60 }, sweepSeconds: 0.2 } } }),
  );
  svc = await createTestService({ WEDVAULT_CONFIG: file });
});
afterAll(async () => {
  await svc?.cleanup();
});

it('promotes a job waiting past its bound, with two instances running the loop', async () => {
  const queue = svc.ctx.queues.queues.backup;
  const hourAgo = Date.now() - 61 * 60_000;
  await queue.add(
    'backup',
    { type: 'files' },
    { jobId: 'old', priority: PRIORITY.later, timestamp: hourAgo },
  );
  await queue.add('backup', { type: 'files' }, { jobId: 'young', priority: PRIORITY.later });
  await queue.add('backup', { type: 'files' }, { jobId: 'near', priority: PRIORITY.week });
  const loops = [startLoadLoops(svc.ctx), startLoadLoops(svc.ctx)];
  try {
    await waitFor(async () => (await queue.getJob('old'))?.priority === 0, 5_000);
    expect(await queue.getJobState('old')).toBe('waiting'); // the plain list: ahead of every tier
    expect((await queue.getJob('young'))!.priority).toBe(PRIORITY.later);
    expect((await queue.getJob('near'))!.priority).toBe(PRIORITY.week);
  } finally {
    await Promise.all(loops.map((l) => l.stop()));
  }
});
