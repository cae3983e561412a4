/**
 * Continuous capture in the worker role: one process per source holds a Redis lease and runs a
 * capture step every `segmentSeconds`; the others stand by and take over when the lease lapses (a
 * killed holder's lease ends within `leaseMs`). A failed step is logged and tried again next tick:
 * the slot keeps every change until a segment holding it is stored.
 */
import { randomUUID } from 'node:crypto';
import type { AppContext } from '../context.js';
import { NotFoundError, errorMessage } from '../errors.js';
import { Capture, ensureCaptureSlot } from '../engine/pitr/capture.js';
import { PITR_SOURCE } from '../engine/pitr/types.js';
import { Repository } from '../engine/repo/repository.js';
import { requestBackup } from '../producers/backups.js';
import { captureStatusKey } from '../queues/capture-status.js';

export interface CaptureLoop {
  /** Whether this process holds the lease now. */
  active(): boolean;
  stop(): Promise<void>;
}

const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export function startCapture(ctx: AppContext, opts: { leaseMs?: number } = {}): CaptureLoop {
  const pitr = ctx.config.sources.postgres.pitr;
  const everyMs = Math.round(pitr.segmentSeconds * 1000);
  const leaseMs = opts.leaseMs ?? Math.max(2_000, 3 * everyMs);
  const redis = ctx.queues.connection;
  const lease = `${ctx.queues.prefix}:pitr:${PITR_SOURCE}:lease`;
  const status = captureStatusKey(ctx.queues.prefix);
  const token = `${process.pid}.${randomUUID()}`;
  const log = ctx.log.child({ component: 'capture', slot: pitr.slot });
  let holding = false;
  let capture: Capture | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;

  let waiting = false;
  const open = async (): Promise<Capture | undefined> => {
    const [primary, ...others] = ctx.config.targets.map((t) => ({
      target: t.name,
      storage: ctx.storage(t.name),
    }));
    const pg = ctx.config.sources.postgres;
    let repo: Repository;
    try {
      repo = await Repository.open(primary!.storage, ctx.config.masterKey);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      // no repository yet: the first backup makes it; the slot keeps every change meanwhile
      await ensureCaptureSlot(pg.url, pitr.slot);
      if (!waiting)
        log.info({ target: primary!.target }, 'capture waits for the first backup to create the repository');
      waiting = true;
      return undefined;
    }
    return new Capture({
      url: pg.url,
      source: PITR_SOURCE,
      slot: pitr.slot,
      segmentBytes: pitr.segmentBytes,
      schema: pg,
      classes: ctx.config.retention.classes,
      repo,
      copies: others,
      onBaseNeeded: async (reason) => {
        const op = await requestBackup(
          ctx,
          { type: 'full', components: ['database'] },
          { requestedBy: 'pitr-capture' },
        );
        log.warn({ operationId: op.operationId, reason }, 'base backup requested by the capture');
      },
      onAlert: (kind, message) => {
        const level = kind === 'copy-failed' ? 'warn' : 'error';
        log[level]({ alert: kind }, message);
        void redis.hincrby(status, `alerts.${kind}`, 1).catch(() => undefined);
      },
    });
  };

  /** Takes or keeps the lease; false when another process holds it. */
  const lead = async (): Promise<boolean> => {
    if (!holding) {
      holding = (await redis.set(lease, token, 'PX', leaseMs, 'NX')) === 'OK';
      if (holding) log.info({ leaseMs }, 'capture lease taken: this process captures');
    } else if (!(await redis.eval(RENEW, 1, lease, token, String(leaseMs)))) {
      holding = false;
      log.warn('capture lease lost: standing by');
      await capture?.close();
      capture = undefined;
    }
    return holding && !stopped;
  };

  const tick = async () => {
    if (!(await lead())) return;
    capture ??= await open();
    if (!capture) return;
    // a step cut short by its size bound is followed at once: under a heavy load the capture keeps up
    for (let more = true; more && capture && (await lead());) {
      const r = await capture.step();
      more = r.more;
      const fields: Record<string, string> = {
        at: new Date().toISOString(),
        endLsn: r.endLsn,
        holder: token,
      };
      if (r.key) {
        fields.segmentAt = fields.at!;
        if (r.lastCommit) fields.lastCommit = r.lastCommit;
      }
      await redis.hset(status, fields);
      if (r.key) await redis.hincrby(status, 'segments', 1);
    }
  };

  const timer = setInterval(() => {
    running ??= tick()
      .catch(async (err: unknown) => {
        log.warn({ err: errorMessage(err) }, 'capture step failed; trying again');
        // a fresh connection and repository next time: the failure may have been either
        await capture?.close();
        capture = undefined;
      })
      .finally(() => (running = undefined));
  }, everyMs);
  timer.unref();

  return {
    active: () => holding,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
      await capture?.close();
      if (holding) await redis.eval(RELEASE, 1, lease, token).catch(() => undefined);
      holding = false;
    },
  };
}
