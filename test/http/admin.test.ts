import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertApiKey } from '../../src/catalog/api-keys.js';
import { ensureAdminKey } from '../../src/bootstrap.js';
import { createApp } from '../../src/http/app.js';
import { ALL_QUEUES } from '../../src/queues/names.js';
import { createTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let app: Express;
let admin: string;
let reader: string;

beforeAll(async () => {
  svc = await createTestService();
  await ensureAdminKey(svc.ctx);
  admin = svc.env.WEDVAULT_ADMIN_KEY!;
  reader = await upsertApiKey(svc.ctx.db, 'reader', ['backups:read']);
  app = createApp(svc.ctx);
});

afterAll(async () => {
  await svc?.cleanup();
});

const basic = (password: string, user = 'operator') => ({
  Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});
const html = { Accept: 'text/html,application/xhtml+xml' };

/** The row version of a key: it changes with every write to the row. */
async function rowVersion(name: string): Promise<{ xmin: string; last_used_at: Date | null }> {
  const { rows } = await svc.ctx.db.query<{ xmin: string; last_used_at: Date | null }>(
    `SELECT xmin::text, last_used_at FROM api_keys WHERE name = $1`,
    [name],
  );
  return rows[0]!;
}

describe('Bull Board for a browser', () => {
  it('challenges an unauthenticated browser with Basic, and again for a wrong key', async () => {
    const res = await request(app).get('/admin/queues').set(html).expect(401);
    expect(res.headers['www-authenticate']).toBe('Basic realm="wedvault admin", charset="UTF-8"');
    const wrong = await request(app)
      .get('/admin/queues')
      .set({ ...html, ...basic('wv_wrong') })
      .expect(401);
    expect(wrong.headers['www-authenticate']).toMatch(/^Basic /);
    // an empty password is no key at all
    await request(app).get('/admin/queues').set(basic('')).expect(401);
  });

  it('serves the page for the admin key as a Basic password, without outside stylesheets', async () => {
    const res = await request(app)
      .get('/admin/queues')
      .set({ ...html, ...basic(admin) })
      .expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('<base href="/admin/queues/"');
    expect(res.text).not.toMatch(/googleapis|gstatic|href="(https?:)?\/\//);
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
    const api = await request(app).get('/admin/queues/api/queues').set(basic(admin)).expect(200);
    expect(api.body.queues.map((q: { name: string }) => q.name).sort()).toEqual([...ALL_QUEUES].sort());
  });

  it('keeps Bearer working and the admin scope required, whichever scheme', async () => {
    await request(app)
      .get('/admin/queues')
      .set({ Authorization: `Bearer ${admin}` })
      .expect(200);
    await request(app)
      .get('/admin/queues/api/queues')
      .set({ Authorization: `Bearer ${admin}` })
      .expect(200);
    await request(app).get('/admin/queues/api/queues').expect(401);
    await request(app).get('/admin/queues/api/queues').set(basic(reader)).expect(403);
    await request(app)
      .get('/admin/queues')
      .set({ Authorization: `Bearer ${reader}` })
      .expect(403);
  });

  it('serves every script, stylesheet and image the page names, without a key', async () => {
    const page = await request(app).get('/admin/queues').set(basic(admin)).expect(200);
    const assets = [...page.text.matchAll(/(?:src|href)="(static\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThanOrEqual(5);
    for (const asset of assets) {
      const res = await request(app).get(`/admin/queues/${asset}`).expect(200);
      expect(res.headers['content-type']).toMatch(/javascript|css|image/);
    }
  });

  it('refuses a cross-site write even with credentials the browser holds', async () => {
    const pause = '/admin/queues/api/queues/backup/pause';
    const foreign = await request(app)
      .put(pause)
      .set({ ...basic(admin), Origin: 'http://evil.example' })
      .expect(403);
    expect(foreign.body.error.code).toBe('forbidden');
    await request(app)
      .put(pause)
      .set({ ...basic(admin), 'Sec-Fetch-Site': 'cross-site' })
      .expect(403);
    expect(await svc.ctx.queues.queues.backup.isPaused()).toBe(false);

    // a browser that sends no Sec-Fetch-Site is judged by its Origin against the Host it asked
    const sameOrigin = { Host: 'backups.example:3000', Origin: 'http://backups.example:3000' };
    await request(app)
      .put(pause)
      .set({ ...basic(admin), ...sameOrigin })
      .expect(200);
    expect(await svc.ctx.queues.queues.backup.isPaused()).toBe(true);
    // behind a proxy that rewrites Host, the browser's own Sec-Fetch-Site still vouches for the page
    await request(app)
      .put('/admin/queues/api/queues/backup/resume')
      .set({ ...basic(admin), Origin: 'https://backups.example', 'Sec-Fetch-Site': 'same-origin' })
      .expect(200);
    expect(await svc.ctx.queues.queues.backup.isPaused()).toBe(false);
  });
});

describe('open and throttled', () => {
  it('serves the OpenAPI document without a key; the API itself still wants Bearer only', async () => {
    const doc = await request(app).get('/api/openapi.json').expect(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    expect(doc.body.paths['/api/openapi.json'].get.security).toEqual([]);
    const api = await request(app).get('/api/backups').set(basic(admin)).expect(401);
    expect(api.headers['www-authenticate']).toBeUndefined();
  });

  it('writes last_used_at once for a page load of many requests', async () => {
    await svc.ctx.db.query(`UPDATE api_keys SET last_used_at = NULL WHERE name = 'admin'`);
    const before = await rowVersion('admin');
    const page = await request(app).get('/admin/queues').set(basic(admin)).expect(200);
    const first = await rowVersion('admin');
    expect(first.last_used_at).not.toBeNull();
    expect(first.xmin).not.toBe(before.xmin);

    const assets = [...page.text.matchAll(/(?:src|href)="(static\/[^"]+)"/g)].map((m) => m[1]!);
    for (const asset of assets)
      await request(app).get(`/admin/queues/${asset}`).set(basic(admin)).expect(200);
    for (let i = 0; i < 10; i++)
      await request(app).get('/admin/queues/api/queues').set(basic(admin)).expect(200);
    for (let i = 0; i < 5; i++)
      await request(app)
        .get('/api/backups')
        .set({ Authorization: `Bearer ${admin}` });
    expect(await rowVersion('admin')).toEqual(first);
  });
});
