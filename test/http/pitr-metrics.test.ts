import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/http/metrics.js';
import { captureStatusKey } from '../../src/queues/capture-status.js';
import { createTestService, type TestService } from '../helpers/service.js';

describe('/metrics: continuous capture', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await createTestService({ WEDVAULT_PITR: 'on' });
  });
  afterAll(async () => {
    await svc.cleanup();
  });

  it('reports the capture lag, segments written and alerts from the status the worker keeps', async () => {
    const { registry } = createMetrics(svc.ctx);
    const before = await registry.metrics();
    expect(before).not.toMatch(/^wedvault_pitr_capture_lag_seconds\{/m); // no step yet
    await svc.ctx.queues.connection.hset(captureStatusKey(svc.ctx.queues.prefix), {
      at: new Date(Date.now() - 30_000).toISOString(),
      segments: '7',
      'alerts.slot-lost': '1',
    });
    const text = await registry.metrics();
    const lag = Number(/^wedvault_pitr_capture_lag_seconds\{source="postgres"\} ([\d.]+)/m.exec(text)?.[1]);
    expect(lag).toBeGreaterThanOrEqual(30);
    expect(lag).toBeLessThan(60);
    expect(text).toMatch(/^wedvault_pitr_segments_total 7$/m);
    expect(text).toMatch(/^wedvault_pitr_alerts_total\{kind="slot-lost"\} 1$/m);
    expect(text).toMatch(/^wedvault_pitr_alerts_total\{kind="schema-break"\} 0$/m);
  });
});
