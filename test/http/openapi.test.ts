// The OpenAPI document covers every route the Express app serves, and its request shapes are the routes' zod schemas.
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApp } from '../../src/http/app.js';
import { jsonSchema } from '../../src/http/openapi-zod.js';
import { createBackupBody, validationBody } from '../../src/http/routes/backups.js';
import { createTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let app: Express;

beforeAll(async () => {
  svc = await createTestService();
  app = createApp(svc.ctx);
});

afterAll(async () => {
  await svc?.cleanup();
});

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  rawPath?: unknown;
  handle: { stack?: Layer[] };
}

/**
 * Every method and path of the app's routes, through mounted routers. The 405 catch-alls
 * (`router.all`) are not routes of their own; Bull Board is an Express app of its own under
 * /admin (a page, not the REST contract), so the walk does not enter it.
 */
function routes(stack: Layer[], prefix = ''): string[] {
  const out: string[] = [];
  for (const layer of stack) {
    if (layer.route) {
      const path = (prefix + layer.route.path).replace(/(.)\/$/, '$1').replace(/:(\w+)/g, '{$1}');
      for (const m of Object.keys(layer.route.methods)) if (m !== '_all') out.push(`${m} ${path}`);
    } else if (layer.handle.stack && typeof layer.rawPath === 'string') {
      out.push(...routes(layer.handle.stack, prefix + layer.rawPath));
    }
  }
  return out;
}

it('documents every route the app serves, and nothing it does not', async () => {
  const served = routes((app as unknown as { router: { stack: Layer[] } }).router.stack);
  // the walk reaches into the mounted routers: a walker that saw nothing would pass vacuously
  expect(served).toEqual(
    expect.arrayContaining([
      'get /healthz',
      'post /api/backups',
      'get /api/backups/status/{operationId}',
      'get /api/backups/validation/{testId}',
      'get /api/targets',
    ]),
  );
  const doc = (await request(app).get('/api/openapi.json').expect(200)).body as {
    paths: Record<string, Record<string, unknown>>;
  };
  const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.keys(ops).map((m) => `${m} ${path}`),
  );
  expect(served.filter((r) => !documented.includes(r))).toEqual([]);
  expect(documented.filter((r) => !served.includes(r))).toEqual([]);
});

it('takes parameters and bodies from the zod schemas that validate the requests', async () => {
  const doc = (await request(app).get('/api/openapi.json').expect(200)).body;
  const list = doc.paths['/api/backups'].get.parameters;
  expect(list.map((p: { name: string }) => p.name)).toEqual([
    'weddingId',
    'since',
    'until',
    'meets321',
    'limit',
  ]);
  expect(list.find((p: { name: string }) => p.name === 'limit').schema).toMatchObject({
    type: 'integer',
    minimum: 1,
    maximum: 1000,
  });
  expect(list.find((p: { name: string }) => p.name === 'meets321').schema.enum).toEqual(['true', 'false']);
  expect(doc.paths['/api/backups'].post.requestBody.content['application/json'].schema).toEqual(
    jsonSchema(createBackupBody),
  );
  expect(doc.paths['/api/backups/validation'].post.requestBody.content['application/json'].schema).toEqual(
    jsonSchema(validationBody),
  );
  expect(doc.paths['/api/backups/status/{operationId}'].get.parameters).toEqual([
    expect.objectContaining({
      name: 'operationId',
      in: 'path',
      required: true,
      schema: expect.objectContaining({ format: 'uuid' }),
    }),
  ]);
  const key = doc.paths['/api/backups'].post.parameters[0];
  expect(key).toMatchObject({
    name: 'Idempotency-Key',
    in: 'header',
    description: expect.stringMatching(/retrying/),
  });
  expect(key.required).toBeUndefined();
});
