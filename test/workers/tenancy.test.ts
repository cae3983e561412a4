import type { Worker } from 'bullmq';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AppContext } from '../../src/context.js';
import { getOperation } from '../../src/catalog/operations.js';
import { postgresSourceSchema } from '../../src/config/schema.js';
import { requestBackup } from '../../src/producers/backups.js';
import { startWorkers, stopWorkers } from '../../src/workers/run.js';
import { query } from '../helpers/pg.js';
import {
  createTestService,
  PG_ADMIN_URL,
  waitFor,
  waitForOperation,
  type TestService,
} from '../helpers/service.js';
import { createTenancySchema } from '../helpers/tenancy-schema.js';

let svc: TestService;
let url: string;
const lines: { level: number; msg: string; tenancy?: { table: string; from: string; to: string } }[] = [];

beforeAll(async () => {
  svc = await createTestService({ WEDVAULT_CEREMONY_DATE: 'app."Weddings"."Ceremony Date"' });
  url = svc.config.sources.postgres.url;
  await query(PG_ADMIN_URL, `CREATE DATABASE ${new URL(url).pathname.slice(1)}`);
  await createTenancySchema(url);
}, 120_000);

afterAll(async () => {
  await svc?.cleanup();
});

/** The service's context with these overrides, logging into `lines`. */
function contextWith(tenancy: Record<string, unknown>): AppContext {
  const log = pino({ level: 'warn' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const postgres = {
    ...svc.config.sources.postgres,
    tenancy: postgresSourceSchema.parse({ tenancy }).tenancy,
  };
  const config = { ...svc.config, sources: { ...svc.config.sources, postgres } };
  return { ...svc.ctx, log, config };
}

async function withWorkers<T>(ctx: AppContext, fn: () => Promise<T>): Promise<T> {
  const workers: Worker[] = startWorkers(ctx, { queues: ['backup'], concurrency: 1 });
  try {
    return await fn();
  } finally {
    await stopWorkers(workers);
  }
}

it('fails a backup with a bad override at once, naming it, writing nothing', async () => {
  const ctx = contextWith({ 'app.guests': { via: 'nope_fkey' } });
  const op = await withWorkers(ctx, async () => {
    const { operationId } = await requestBackup(ctx, { type: 'full', components: ['database'] });
    return waitFor(async () => {
      const o = await getOperation(ctx.db, operationId);
      return o?.state === 'failed' && o;
    });
  });
  expect(op.error).toEqual({
    code: 'config',
    message: 'sources.postgres.tenancy "app.guests": no foreign key "nope_fkey" on app.guests',
  });
  expect(op.attempts).toBe(1); // not retried
  const objects = [];
  for await (const o of ctx.storage(ctx.config.primaryTarget).list('')) objects.push(o.key);
  expect(objects).toEqual([]);
}, 120_000);

it('logs a warning for each table whose class changed since the last database backup', async () => {
  const ctx = contextWith({});
  const backup = async () => {
    const { operationId } = await requestBackup(ctx, { type: 'full', components: ['database'] });
    await waitForOperation(ctx, operationId, 60_000);
  };
  await withWorkers(ctx, async () => {
    await backup();
    await query(url, 'ALTER TABLE public.photos DROP CONSTRAINT photos_guest_id_fkey');
    await backup();
  });
  const warned = lines.filter((l) => l.msg === 'table changed tenancy class since the parent snapshot');
  expect(warned.map((l) => l.tenancy)).toEqual([
    expect.objectContaining({ table: 'public.photos', from: 'mixed', to: 'platform' }),
  ]);
}, 180_000);
