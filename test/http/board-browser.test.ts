import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Worker } from 'bullmq';
import puppeteer, { type Browser } from 'puppeteer-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureAdminKey } from '../../src/bootstrap.js';
import { createApp } from '../../src/http/app.js';
import { requestBackup } from '../../src/producers/backups.js';
import { ALL_QUEUES, jobIds } from '../../src/queues/names.js';
import { startWorkers, stopWorkers } from '../../src/workers/run.js';
import { createTestService, waitForOperation, type TestService } from '../helpers/service.js';

// The page's document, for the functions below that puppeteer runs inside the page (no DOM lib here).
declare const document: {
  body: { innerText: string };
  querySelector(selector: string): unknown;
  querySelectorAll(selector: string): Iterable<{ href: string }>;
};

const CHROMIUM = process.env.TEST_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(`board browser test skipped: no Chromium at ${CHROMIUM} (apt-get install chromium)`);
}

let svc: TestService;
let workers: Worker[] = [];
let server: Server | undefined;
let browser: Browser | undefined;
let profile: string | undefined;
let origin: string;
let backupJobId: string;

beforeAll(async () => {
  if (!haveChromium) return;
  svc = await createTestService();
  mkdirSync(path.join(svc.config.filesDir, 'photos'), { recursive: true });
  writeFileSync(path.join(svc.config.filesDir, 'photos', 'cake.txt'), 'three tiers, lemon\n'.repeat(500));
  await ensureAdminKey(svc.ctx);
  workers = startWorkers(svc.ctx, { queues: ['backup', 'replicate', 'verify'], concurrency: 2 });
  const { operationId } = await requestBackup(svc.ctx, { type: 'files' });
  await waitForOperation(svc.ctx, operationId, 90_000);
  backupJobId = jobIds.backup(operationId);

  const app = createApp(svc.ctx);
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  profile = mkdtempSync(path.join(tmpdir(), 'wv-chromium-'));
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  await stopWorkers(workers);
  await svc?.cleanup();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

it.skipIf(!haveChromium)(
  `an operator logs in with the API key, sees the five queues and the completed backup (needs ${CHROMIUM})`,
  async () => {
    const page = await browser!.newPage();
    page.setDefaultTimeout(60_000);
    const requested: string[] = [];
    const problems: string[] = [];
    page.on('request', (r) => requested.push(r.url()));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (err) => problems.push(String(err)));

    // the browser answers the Basic challenge as a person typing into its login dialog would
    await page.authenticate({ username: 'operator', password: svc.env.WEDVAULT_ADMIN_KEY! });
    const first = await page.goto(`${origin}/admin/queues`, { waitUntil: 'load' });
    expect(first?.status()).toBe(200);
    await page.waitForFunction(
      (names: string[]) => names.every((n) => document.querySelector(`a[href$="/queue/${n}"]`)),
      {},
      ALL_QUEUES,
    );

    await page.goto(`${origin}/admin/queues/queue/backup?status=completed`, { waitUntil: 'load' });
    await page.waitForFunction((id: string) => document.body.innerText.includes(id), {}, backupJobId);
    expect(await page.evaluate(() => document.body.innerText)).toContain('Finished at');

    // the board's own writes pass the same-origin check: the page pauses and resumes a queue as its buttons do
    const statuses = await page.evaluate(async () => {
      const put = async (url: string) => (await fetch(url, { method: 'PUT' })).status;
      return [await put('api/queues/restore/pause'), await put('api/queues/restore/resume')];
    });
    expect(statuses).toEqual([200, 200]);

    const outside = requested.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('data:'));
    expect(outside).toEqual([]);
    const linked = await page.evaluate(() => [...document.querySelectorAll('link[href]')].map((l) => l.href));
    expect(linked.every((href) => href.startsWith(`${origin}/`))).toBe(true);
    expect(problems).toEqual([]);
  },
  240_000,
);
