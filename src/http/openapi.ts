/**
 * The OpenAPI document of the REST contract: every route's path parameters, query, headers and body
 * come from the zod schemas that validate them (test/http/openapi.test.ts walks the router for gaps).
 */
import { z } from 'zod';
import { REQUEST_ID } from './limits.js';
import { recoveryPaths } from './openapi-recovery.js';
import { json, jsonSchema, parameters } from './openapi-zod.js';
import {
  createBackupBody,
  idempotencyHeader,
  statusParams,
  testParams,
  validationBody,
} from './routes/backups.js';
import { holdBody, holdParams } from './routes/compliance.js';
import { listQuery } from './routes/point-list.js';
import { erasureBody, erasureParams } from './routes/erasure.js';
import { previewQuery, scheduleBody, scheduleParams, weddingParams } from './routes/schedules.js';

const errorBody = jsonSchema(
  z.object({
    error: z.object({ code: z.string(), message: z.string(), details: z.unknown() }),
  }),
);

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
const [requestIdHeader] = parameters(
  'header',
  z.object({
    'X-Request-Id': z
      .string()
      .regex(REQUEST_ID)
      .optional()
      .describe(
        'kept (logs, audit_log) when at most 128 characters of [A-Za-z0-9._-]; otherwise replaced by a generated id',
      ),
  }),
);
const operationAnswer = json(
  jsonSchema(
    z.object({
      operationId: z.uuid(),
      priority: z.number().int(),
      statusUrl: z.string(),
      existing: z.enum(['identical', 'idempotency-key']).optional(),
    }),
  ),
);

/** GET of one thing by the id in its path: 200 with it, 404 when unknown. */
const lookup = (summary: string, params: z.ZodObject, thing: string) => ({
  get: {
    summary,
    parameters: parameters('path', params),
    responses: {
      '200': { description: thing },
      '404': { description: `unknown ${thing}` },
      ...errors,
    },
  },
});

/** /api/schedules and /api/weddings/{id}/protection: wedding-aware schedules. */
function schedulePaths(): Record<string, unknown> {
  return {
    '/api/schedules': {
      get: {
        summary: 'Job schedulers as the catalog mirrors them (scope backups:read)',
        responses: {
          '200': {
            description: '{schedules: [{id, queue, pattern, every, tz, enabled, data, editedBy, editedAt}]}',
          },
          ...errors,
        },
      },
    },
    '/api/schedules/preview': {
      get: {
        summary:
          'What will run when: per day and tier, weddings and backups due; each schedule’s runs (scope backups:read)',
        description:
          'Heavy runs (full backups, full verification, drills, prune) outside the off-peak window show heldUntil, the moment the window opens.',
        parameters: parameters('query', previewQuery),
        responses: {
          '200': {
            description:
              '{from, days, weddings, tiers: [{date, tier, weddings, database, files}], schedules}',
          },
          ...errors,
        },
      },
    },
    '/api/schedules/{id}': {
      put: {
        summary:
          'Change a schedule: pattern or every, tz, enabled; the planner’s tier cadences (scope schedules:write)',
        description:
          'Redis follows at once; the edit outlives restarts (a start-up rebuild leaves edited rows alone). ' +
          `Tier cadences are accepted only on wedding-cadence. An invalid cron pattern, time zone or an unknown tier is a 400 naming the field.`,
        parameters: [...parameters('path', scheduleParams), requestIdHeader],
        requestBody: json(jsonSchema(scheduleBody)),
        responses: {
          '200': { description: 'the schedule after the change' },
          '404': { description: 'unknown schedule', ...json(errorBody) },
          ...mutating,
        },
      },
    },
    '/api/weddings/{id}/protection': {
      get: {
        summary:
          'One wedding’s protection: {tier, cadence, newestGoodPoint, rpoNow, nextJob} (scope backups:read)',
        parameters: parameters('path', weddingParams),
        responses: {
          '200': {
            description:
              'tier, cadence (factors, intervals), newest verified points, RPO now against the target, the next job',
          },
          '404': { description: 'the source database does not know this wedding', ...json(errorBody) },
          ...errors,
        },
      },
    },
  };
}

/** /api/compliance: erasure of one couple or supplier. */
function compliancePaths(): Record<string, unknown> {
  return {
    '/api/compliance/erasure': {
      post: {
        summary:
          'Erase one couple (weddingId) or supplier (supplierId) from every copy (scope erasures:write)',
        description:
          'Destroys the scope’s keys on every target (crypto-shredding), proves it on each and signs a ' +
          'certificate. Later backups leave the scope out; restores of older points leave it out. A second ' +
          'request for the same scope answers 200 with the first erasure.',
        parameters: [requestIdHeader],
        requestBody: json(jsonSchema(erasureBody)),
        responses: {
          '202': { description: '{erasureId, status, statusUrl}' },
          '200': { description: 'the erasure already requested for this scope' },
          '404': { description: 'weddingId is in neither the source database nor any recovery point' },
          ...mutating,
        },
      },
    },
    '/api/compliance/erasure/{erasureId}': lookup(
      'Erasure status: queued, running, completed or failed, each target and the certificate (scope erasures:write)',
      erasureParams,
      'erasure',
    ),
    '/api/compliance/holds': {
      post: {
        summary: 'Place a legal hold on a wedding or a recovery point (scope holds:write)',
        description:
          'Exactly one of weddingId and recoveryPointId. A held point, and every point holding a held ' +
          'wedding, is never forgotten while the hold is active (not released, until not passed).',
        parameters: [requestIdHeader],
        requestBody: json(jsonSchema(holdBody)),
        responses: {
          '201': { description: 'the hold' },
          '404': { description: 'unknown wedding or recovery point', ...json(errorBody) },
          ...mutating,
        },
      },
      get: {
        summary: 'Active legal holds (scope backups:read)',
        responses: { '200': { description: '{holds}' }, ...errors },
      },
    },
    '/api/compliance/holds/{id}': {
      delete: {
        summary: 'Release a legal hold (scope holds:write)',
        parameters: [...parameters('path', holdParams), requestIdHeader],
        responses: {
          '204': { description: 'released (or already released)' },
          '404': { description: 'unknown hold', ...json(errorBody) },
          ...mutating,
        },
      },
    },
    '/api/compliance/retention': {
      get: {
        summary: 'The retention policy and the next 30 days of expiries (scope backups:read)',
        description:
          'expiries: for each day from today, the points a purge that day would forget (and why) that ' +
          'it would not have forgotten the day before; holds lapsing in the window are taken into account.',
        responses: { '200': { description: '{policy, holds, expiries}' }, ...errors },
      },
    },
  };
}

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
          parameters: [...parameters('header', idempotencyHeader), requestIdHeader],
          requestBody: json(jsonSchema(createBackupBody)),
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
          description:
            'Newest first. With meets321, points are read until `limit` of them match or none are left.',
          parameters: parameters('query', listQuery),
          responses: { '200': { description: 'recovery points' }, ...errors },
        },
      },
      '/api/backups/create': {
        post: {
          summary: 'Alias of POST /api/backups',
          parameters: [...parameters('header', idempotencyHeader), requestIdHeader],
          requestBody: json(jsonSchema(createBackupBody)),
          responses: { '202': { description: 'queued' } },
        },
      },
      '/api/backups/status/{operationId}': lookup(
        'Operation state: queued, running, completed or failed (scope backups:read)',
        statusParams,
        'operation',
      ),
      '/api/backups/validation': {
        post: {
          summary: 'Verify a recovery point (scope validation:write)',
          parameters: [requestIdHeader],
          requestBody: json(jsonSchema(validationBody)),
          responses: {
            '202': { description: '{testId}', ...json(jsonSchema(z.object({ testId: z.uuid() }))) },
            '404': { description: 'unknown recovery point', ...json(errorBody) },
            ...mutating,
          },
        },
      },
      '/api/backups/validation/{testId}': lookup(
        'Verification result (scope backups:read)',
        testParams,
        'validation',
      ),
      '/api/targets': {
        get: {
          summary:
            'Targets, health, shared limits and 3-2-1, and load management: backpressure, deferrals, the source guard (scope targets:read)',
          responses: { '200': { description: 'targets' } },
        },
      },
      ...compliancePaths(),
      ...recoveryPaths({ errors, mutating, requestIdHeader }),
      ...schedulePaths(),
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
