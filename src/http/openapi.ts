/** The OpenAPI document of the REST contract, built from the same zod schemas that validate requests. */
import { z } from 'zod';
import { REQUEST_ID } from './limits.js';
import { IDEMPOTENCY_KEY, createBackupBody } from './routes/backups.js';

const errorBody = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' }, details: {} },
      required: ['code', 'message'],
    },
  },
};

const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });
const retryAfter = { 'Retry-After': { description: 'seconds to wait', schema: { type: 'integer' } } };
const errors = {
  '400': { description: 'invalid request; details name the fields', ...json(errorBody) },
  '401': { description: 'missing or unknown API key', ...json(errorBody) },
  '403': { description: 'the key lacks the scope', ...json(errorBody) },
  '405': { description: 'method not allowed on this path; the Allow header lists those that are' },
  '503': {
    description: 'Redis or the catalog did not answer in time; details.dependency names which',
    headers: retryAfter,
    ...json(errorBody),
  },
};
/** Mutating calls: limited per API key, bodies up to 256 KiB. */
const mutating = {
  ...errors,
  '413': { description: 'request body too large (256 KiB at most)', ...json(errorBody) },
  '429': {
    description:
      'more mutating requests a minute than this key may make (WEDVAULT_RATE_LIMIT_PER_MINUTE, default 60)',
    headers: retryAfter,
    ...json(errorBody),
  },
};
const requestIdHeader = {
  name: 'X-Request-Id',
  in: 'header',
  description:
    'kept (logs, audit_log) when at most 128 characters of [A-Za-z0-9._-]; otherwise replaced by a generated id',
  schema: { type: 'string', pattern: REQUEST_ID.source },
};
const operationAnswer = json({
  type: 'object',
  properties: {
    operationId: { type: 'string', format: 'uuid' },
    priority: { type: 'integer' },
    statusUrl: { type: 'string' },
    existing: { type: 'string', enum: ['identical', 'idempotency-key'] },
  },
});

export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'wedvault',
      version: '0.1.0',
      description: 'Backup orchestration for the wedding platform',
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    paths: {
      '/api/backups': {
        post: {
          summary: 'Start a backup (scope backups:write)',
          description:
            'A request identical (same key, same body) to one still queued or running answers 200 with ' +
            'that operation (existing: identical). With an Idempotency-Key, the same key and body always ' +
            'answer 200 with the first operation (existing: idempotency-key); the key with another body is 422.',
          parameters: [
            {
              name: 'Idempotency-Key',
              in: 'header',
              description: 'names this request for good: send the same one when retrying',
              schema: { type: 'string', pattern: IDEMPOTENCY_KEY.source },
            },
            requestIdHeader,
          ],
          requestBody: json(z.toJSONSchema(createBackupBody)),
          responses: {
            '202': { description: 'a new operation, queued', ...operationAnswer },
            '200': {
              description: 'an existing operation (identical request, or Idempotency-Key replay)',
              headers: { 'Idempotent-Replayed': { schema: { type: 'string', enum: ['true'] } } },
              ...operationAnswer,
            },
            '404': { description: 'weddingId is in neither the source database nor any recovery point' },
            '422': { description: 'Idempotency-Key already used with another body', ...json(errorBody) },
            ...mutating,
          },
        },
        get: {
          summary: 'List recovery points with meets321 and reason321 (scope backups:read)',
          parameters: ['weddingId', 'since', 'until', 'meets321', 'limit'].map((name) => ({
            name,
            in: 'query',
            schema: { type: 'string' },
          })),
          responses: { '200': { description: 'recovery points' }, ...errors },
        },
      },
      '/api/backups/create': {
        post: { summary: 'Alias of POST /api/backups', responses: { '202': { description: 'queued' } } },
      },
      '/api/backups/status/{operationId}': {
        get: {
          summary: 'Operation state: queued, running, completed or failed (scope backups:read)',
          parameters: [
            { name: 'operationId', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } },
          ],
          responses: {
            '200': { description: 'operation' },
            '404': { description: 'unknown operation' },
            ...errors,
          },
        },
      },
      '/api/backups/validation': {
        post: {
          summary: 'Verify a recovery point (scope validation:write)',
          parameters: [requestIdHeader],
          responses: { '202': { description: '{testId}' }, ...mutating },
        },
      },
      '/api/backups/validation/{testId}': {
        get: { summary: 'Verification result', responses: { '200': { description: 'test' } } },
      },
      '/api/targets': {
        get: {
          summary: 'Targets, health and 3-2-1 (scope targets:read)',
          responses: { '200': { description: 'targets' } },
        },
      },
      '/api/openapi.json': {
        get: { security: [], summary: 'This document', responses: { '200': { description: 'OpenAPI 3' } } },
      },
      '/healthz': {
        get: { security: [], summary: 'Process is up', responses: { '200': { description: 'ok' } } },
      },
      '/readyz': {
        get: {
          security: [],
          summary: 'Redis and catalog reachable; answers within 2 s',
          responses: {
            '200': { description: 'ready' },
            '503': { description: 'not ready: `failing` lists redis and/or catalog, each with its error' },
          },
        },
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics (scope metrics:read or admin; no key with WEDVAULT_METRICS_PUBLIC=on)',
          responses: { '200': { description: 'text' }, ...errors },
        },
      },
    },
  };
}
