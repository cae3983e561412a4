/** Prometheus metrics: process defaults, queue depths, and HTTP request counts. */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { AppContext } from '../context.js';
import { countUnhealthyPoints } from '../catalog/recovery-points.js';
import { listTargetHealth } from '../catalog/targets.js';
import { dependency } from '../deadline.js';
import { onRequestPath } from '../queues/connection.js';
import type { QueueName } from '../queues/names.js';
import { measureSla, type TierSla } from '../producers/protection.js';
import { registerLoadMetrics } from './load-status.js';
import { registerPitrMetrics } from './pitr-metrics.js';

export function createMetrics(ctx: AppContext): { registry: Registry; httpRequests: Counter } {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'wedvault_' });
  const httpRequests = new Counter({
    name: 'wedvault_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  new Gauge({
    name: 'wedvault_queue_jobs',
    help: 'Jobs per queue and state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      // The request connection fails fast and the deadline bounds the rest: a scrape during a Redis
      // outage gets 503 naming redis instead of hanging.
      const names = Object.keys(ctx.queues.queues) as QueueName[];
      const counts = await onRequestPath(ctx.queues, (q) =>
        Promise.all(
          names.map((name) =>
            q[name].getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized'),
          ),
        ),
      );
      names.forEach((name, i) => {
        for (const [state, n] of Object.entries(counts[i]!)) this.set({ queue: name, state }, n);
      });
    },
  });
  new Gauge({
    name: 'wedvault_target_healthy',
    help: '1 when the target answered its last operation, 0 after a failure',
    labelNames: ['target'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const h of await dependency(listTargetHealth(ctx.db), 'catalog'))
        this.set({ target: h.name }, h.healthy ? 1 : 0);
    },
  });
  new Gauge({
    name: 'wedvault_recovery_points_unhealthy',
    help: 'Recovery points whose last verification or drill failed',
    registers: [registry],
    async collect() {
      this.set(await dependency(countUnhealthyPoints(ctx.db), 'catalog'));
    },
  });
  slaGauges(ctx, registry);
  registerLoadMetrics(registry, ctx);
  registerPitrMetrics(registry, ctx);
  return { registry, httpRequests };
}

/** Per tier: the SLA measure (src/producers/protection.ts), computed at most every 30 s however often scraped. */
function slaGauges(ctx: AppContext, registry: Registry): void {
  let cached: { at: number; tiers: Promise<TierSla[]> } | undefined;
  const tiers = () => {
    if (!cached || Date.now() - cached.at > 30_000) {
      // a source that cannot be read leaves the SLA gauges empty; the rest of the scrape still answers
      cached = {
        at: Date.now(),
        tiers: dependency(measureSla(ctx), 'catalog').catch((err: unknown) => {
          ctx.log.warn({ err }, 'SLA measure failed; SLA gauges left out of this scrape');
          cached = undefined;
          return [];
        }),
      };
    }
    return cached.tiers;
  };
  const gauge = (name: string, help: string, value: (t: TierSla) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['tier'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const t of await tiers()) {
          const v = value(t);
          if (v !== null) this.set({ tier: t.tier }, v);
        }
      },
    });
  gauge(
    'wedvault_sla_newest_verified_age_seconds',
    'Oldest newest-verified-point age among the tier weddings',
    (t) => t.newestVerifiedAgeSeconds,
  );
  gauge(
    'wedvault_sla_change_segment_age_seconds',
    'Oldest newest-change-segment age where capture covers the tier',
    (t) => t.changeSegmentAgeSeconds,
  );
  gauge('wedvault_sla_rpo_seconds', 'The tier RPO target', (t) => t.rpoSeconds);
  gauge('wedvault_sla_weddings', 'Weddings in the tier', (t) => t.weddings);
  gauge(
    'wedvault_sla_breached_weddings',
    'Weddings past the tier RPO or without a verified point',
    (t) => t.breached,
  );
  gauge('wedvault_sla_alert', '1 while the tier is past its RPO (the SLA alert), else 0', (t) =>
    t.breached > 0 ? 1 : 0,
  );
}
