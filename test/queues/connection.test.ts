import { expect, it } from 'vitest';
import { createQueues } from '../../src/queues/connection.js';
import { freePort } from '../helpers/emulators.js';
import { waitFor } from '../helpers/service.js';

it('queues and the flow producer report a Redis that is away instead of throwing', async () => {
  // a port nobody listens on: every connect is refused, as while Redis restarts
  const port = await freePort();

  const sources = new Set<string>();
  const q = createQueues(`redis://127.0.0.1:${port}`, `wvtest-away-${port}`, undefined, (_err, source) =>
    sources.add(source),
  );
  try {
    // adding a job touches the queue's and the flow producer's connections
    void q.queues.backup.add('backup', {}).catch(() => undefined);
    await waitFor(
      async () => sources.has('redis') && [...sources].some((s) => s.startsWith('queue ')),
      10_000,
    );
    expect(sources.has('redis')).toBe(true);
  } finally {
    await q.close().catch(() => undefined);
  }
});
