/** Continuous capture's metrics, from the status the capture worker keeps in Redis (workers/capture.ts). */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AppContext } from '../context.js';
import { onRequestPath } from '../queues/connection.js';
import { captureStatusKey } from '../queues/capture-status.js';
import { PITR_SOURCE } from '../engine/pitr/types.js';

export function registerPitrMetrics(registry: Registry, ctx: AppContext): void {
  if (!ctx.config.sources.postgres.pitr.enabled) return;
  let current: Promise<Record<string, string>> | undefined;
  // one read of the status hash per scrape for the three metrics
  const status = () => {
    current ??= onRequestPath(ctx.queues, () =>
      ctx.queues.request.connection.hgetall(captureStatusKey(ctx.queues.prefix)),
    ).finally(() => setImmediate(() => (current = undefined)));
    return current;
  };
  new Gauge({
    name: 'wedvault_pitr_capture_lag_seconds',
    help: 'Seconds since the capture last read the change stream to its end (absent before the first step)',
    labelNames: ['source'],
    registers: [registry],
    async collect() {
      this.reset();
      const at = (await status()).at;
      if (at) this.set({ source: PITR_SOURCE }, Math.max(0, (Date.now() - Date.parse(at)) / 1000));
    },
  });
  new Counter({
    name: 'wedvault_pitr_segments_total',
    help: 'Change segments the capture wrote (all capture processes)',
    registers: [registry],
    async collect() {
      this.reset();
      this.inc(Number((await status()).segments ?? 0));
    },
  });
  new Counter({
    name: 'wedvault_pitr_alerts_total',
    help: 'Capture alerts by kind: slot-lost (a gap was recorded), schema-break, copy-failed',
    labelNames: ['kind'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const kind of ['slot-lost', 'schema-break', 'copy-failed']) {
        this.inc({ kind }, Number((await status())[`alerts.${kind}`] ?? 0));
      }
    },
  });
}
