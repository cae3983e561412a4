/** Keeps a running job's catalog row alive, and reports progress to BullMQ without letting a lost job key crash the process. */
import type { Job } from 'bullmq';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * Touches the row every `everyMs` until the returned stop function is called. The reconciler treats a
 * row whose heartbeat is older than the job lock as abandoned, so this lives in the catalog, not in
 * Redis: a Redis that restarted empty must not make a job still running here look dead.
 */
export function startHeartbeat(touch: () => Promise<void>, everyMs: number, log: Logger): () => void {
  let failing = false;
  const timer = setInterval(() => {
    touch().then(
      () => (failing = false),
      (err: unknown) => {
        if (!failing)
          log.warn({ err: errorMessage(err) }, 'heartbeat not recorded; the catalog is unreachable');
        failing = true;
      },
    );
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** How often a running job touches its row: a third of the lock, so one missed beat is no alarm. */
export function heartbeatEvery(jobLockMs: number): number {
  return Math.max(250, Math.min(10_000, Math.floor(jobLockMs / 3)));
}

/**
 * Progress is a courtesy to dashboards. When the job's key is gone (Redis restarted empty, the key was
 * deleted) updateProgress rejects with "Missing key for job"; that must not end the process, nor the
 * job, whose work is recorded in the catalog. Logged once per job.
 */
export function progressReporter(job: Job, log: Logger): (progress: number | object) => void {
  let warned = false;
  return (progress) => {
    job.updateProgress(progress).catch((err: unknown) => {
      if (warned) return;
      warned = true;
      log.warn({ err: errorMessage(err) }, 'progress not recorded in Redis; the job carries on');
    });
  };
}
