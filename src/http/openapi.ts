/** The OpenAPI document of the REST contract, built from the same zod schemas that validate requests. */
import { z } from 'zod';
import { createBackupBody } from './routes/backups.js';

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
const errors = {
  '400': { description: 'invalid request; details name the fields', ...json(errorBody) },
  '401': { description: 'missing or unknown API key', ...json(errorBody) },
  '403': { description: 'the key lacks the scope', ...json(errorBody) },
};

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
          requestBody: json(z.toJSONSchema(createBackupBody)),
          responses: {
            '202': {
              description: 'queued',
              ...json({ type: 'object', properties: { operationId: { type: 'string' } } }),
            },
            ...errors,
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
          responses: { '202': { description: '{testId}' }, ...errors },
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
          summary: 'Redis and catalog reachable',
          responses: { '200': { description: 'ready' }, '503': { description: 'not ready' } },
        },
      },
      '/metrics': {
        get: { security: [], summary: 'Prometheus metrics', responses: { '200': { description: 'text' } } },
      },
    },
  };
}
