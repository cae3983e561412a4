/**
 * The SLA monitor: per tier, is every wedding's newest verified point within the tier's RPO? A tier
 * that passes it is logged at error and POSTed to the configured webhook once per breach (Redis
 * remembers the open breach, so several scheduler processes alert once); /metrics shows the same.
 */
import type { Redis } from 'ioredis';
import type { AppContext } from '../context.js';
import { errorMessage } from '../errors.js';
import { measureSla, type NewestSegment, type TierSla } from '../producers/protection.js';
import type { Clock } from '../producers/cadence.js';

export interface SlaMonitorOptions {
  everyMs: number;
  clock?: Clock;
  /** Continuous capture's newest segment per wedding, when capture is built and on. */
  newestSegment?: NewestSegment;
}

export interface SlaAlert {
  tier: string;
  weddings: number;
  breached: number;
  rpoSeconds: number;
  newestVerifiedAgeSeconds: number | null;
  at: string;
}

/** One pass: measures, alerts on newly breached tiers, forgets recovered ones. Returns the new alerts. */
export async function checkSla(
  ctx: AppContext,
  opts: Omit<SlaMonitorOptions, 'everyMs'> = {},
): Promise<SlaAlert[]> {
  const now = (opts.clock ?? (() => new Date()))();
  const tiers = await measureSla(ctx, now, opts.newestSegment);
  const redis = ctx.queues.connection as Redis;
  const alerts: SlaAlert[] = [];
  for (const t of tiers) {
    const key = `${ctx.queues.prefix}:sla:breach:${t.tier}`;
    if (t.breached === 0) {
      await redis.del(key);
      continue;
    }
    if ((await redis.set(key, now.toISOString(), 'NX')) !== 'OK') continue; // already alerted
    alerts.push(alertOf(t, now));
  }
  for (const a of alerts) {
    ctx.log.error({ sla: a }, `SLA: tier ${a.tier} has ${a.breached} wedding(s) past its RPO`);
    await postWebhook(ctx, a);
  }
  return alerts;
}

const alertOf = (t: TierSla, now: Date): SlaAlert => ({
  tier: t.tier,
  weddings: t.weddings,
  breached: t.breached,
  rpoSeconds: t.rpoSeconds,
  newestVerifiedAgeSeconds: t.newestVerifiedAgeSeconds,
  at: now.toISOString(),
});

async function postWebhook(ctx: AppContext, alert: SlaAlert): Promise<void> {
  const url = ctx.config.scheduling.alertWebhookUrl;
  if (!url) return;
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'wedvault.sla.breach', ...alert }),
      signal: AbortSignal.timeout(5_000),
    });
    if (!res.ok) ctx.log.warn({ status: res.status }, 'SLA webhook answered an error');
  } catch (err) {
    ctx.log.warn({ err: errorMessage(err) }, 'SLA webhook unreachable');
  }
}

export function startSlaMonitor(ctx: AppContext, opts: SlaMonitorOptions): { stop(): void } {
  const timer = setInterval(() => {
    checkSla(ctx, opts).catch((err: unknown) => ctx.log.warn({ err: errorMessage(err) }, 'SLA check failed'));
  }, opts.everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
