/** Prometheus metrics: process defaults, queue depths, and HTTP request counts. */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { AppContext } from '../context.js';
import { countUnhealthyPoints } from '../catalog/recovery-points.js';
import { listTargetHealth } from '../catalog/targets.js';
import { dependency } from '../deadline.js';
import { onRequestPath } from '../queues/connection.js';
import type { QueueName } from '../queues/names.js';

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
  return { registry, httpRequests };
}
