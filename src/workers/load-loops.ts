/**
 * The periodic parts of load management, in the worker and scheduler roles: the aging sweep and
 * the event triggers. Each pass runs in one process at a time (a Redis lock that lapses with the
 * period), so several instances do not sweep or trigger twice.
 */
import type { AppContext } from '../context.js';
import { agingBoundsMs } from '../config/index.js';
import { errorMessage } from '../errors.js';
import type { QueueName } from '../queues/names.js';
import { sweepAging } from './aging.js';
import { checkEventTriggers } from './events.js';

export interface LoadLoops {
  stop(): Promise<void>;
}

interface Loop {
  name: string;
  everyMs: number;
  run(): Promise<void>;
}

function every(ctx: AppContext, loop: Loop): LoadLoops {
  const lock = `${ctx.queues.prefix}:load:${loop.name}-lock`;
  let running: Promise<void> | undefined;
  const tick = async () => {
    const mine = await ctx.queues.connection.set(lock, String(process.pid), 'PX', loop.everyMs, 'NX');
    if (mine === 'OK') await loop.run();
  };
  const timer = setInterval(() => {
    running ??= tick()
      .catch((err: unknown) =>
        ctx.log.warn({ err: errorMessage(err), loop: loop.name }, 'load loop failed; next time'),
      )
      .finally(() => (running = undefined));
  }, loop.everyMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

export function startLoadLoops(ctx: AppContext, clock: () => number = Date.now): LoadLoops {
  const { aging, events } = ctx.config.load;
  const bounds = agingBoundsMs(aging, ctx.config.scheduling.tiers);
  const loops = [
    every(ctx, {
      name: 'aging',
      everyMs: aging.sweepSeconds * 1000,
      async run() {
        for (const [name, queue] of Object.entries(ctx.queues.queues)) {
          for (const p of await sweepAging(queue, ctx.queues.connection, clock(), bounds))
            ctx.log.info(
              { queue: name as QueueName, jobId: p.id, tier: p.tier, waitedMs: p.waitedMs },
              'job aged: promoted ahead of every tier',
            );
        }
      },
    }),
  ];
  if (events.rows > 0 || events.megabytes > 0)
    loops.push(
      every(ctx, {
        name: 'events',
        everyMs: events.everySeconds * 1000,
        run: async () => void (await checkEventTriggers(ctx, clock())),
      }),
    );
  return { stop: async () => void (await Promise.all(loops.map((l) => l.stop()))) };
}
