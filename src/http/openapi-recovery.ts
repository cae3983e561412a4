/** The OpenAPI paths of point-in-time and disaster recovery (issue 21), from the routes' zod schemas. */
import { z } from 'zod';
import { json, jsonSchema, parameters } from './openapi-zod.js';
import { customPlanBody, drillBody, executeBody } from './routes/dr.js';
import { recoveryBody, recoveryParams, restorePointBody } from './routes/recovery.js';

interface Shared {
  errors: Record<string, unknown>;
  mutating: Record<string, unknown>;
  requestIdHeader: unknown;
}

export function recoveryPaths({ errors, mutating, requestIdHeader }: Shared): Record<string, unknown> {
  const post = (
    summary: string,
    body: z.ZodType | undefined,
    responses: Record<string, unknown>,
    description?: string,
  ) => ({
    post: {
      summary,
      ...(description && { description }),
      parameters: [requestIdHeader],
      ...(body && { requestBody: json(jsonSchema(body)) }),
      responses: { ...responses, ...mutating },
    },
  });
  const get = (summary: string, thing: string, params?: z.ZodObject) => ({
    get: {
      summary,
      ...(params && { parameters: parameters('path', params) }),
      responses: {
        '200': { description: thing },
        ...(params && { '404': { description: `unknown ${thing}` } }),
        ...errors,
      },
    },
  });
  const id = z.object({ id: z.string() });
  return {
    '/api/backups/recovery': post(
      'Recover to a point in time: the whole database or one wedding, new or merged (scope recovery:write)',
      recoveryBody,
      {
        '202': {
          description: '{recoveryId, statusUrl}',
          ...json(jsonSchema(z.object({ recoveryId: z.uuid(), statusUrl: z.string() }))),
        },
      },
      'Exactly one of targetTime (ISO 8601 with a zone), targetLsn and restorePoint. 400 names the field: a time ' +
        'in the future or before the earliest recoverable point (the message and details.window name the window), ' +
        'two targets, merge without weddingId, a targetDatabase that is not a postgres:// URL.',
    ),
    '/api/backups/recovery/{recoveryId}': get(
      'Recovery state (queued, running, completed, failed), progress, base point, achieved RPO, validation (scope backups:read)',
      'recovery',
      recoveryParams,
    ),
    '/api/restore-points': {
      ...post(
        'Name the source’s current position as a restore point (scope recovery:write)',
        restorePointBody,
        {
          '201': { description: '{name, lsn, time}' },
          '409': { description: 'the name is taken' },
        },
      ),
      ...get('Named restore points, newest first (scope backups:read)', 'restore points'),
    },
    '/api/pitr': get(
      'Per source: each target’s earliest and latest recoverable time, the capture’s lag, RPO now, gaps (scope backups:read)',
      'status',
    ),
    '/api/dr/plans': {
      ...get(
        'Disaster-recovery plans: built-in (one per scenario) and custom, with steps, copies and RTO estimate',
        'plans',
      ),
      ...post('Add a custom plan: a scenario with its parameters (scope dr:write)', customPlanBody, {
        '201': { description: 'the plan' },
      }),
    },
    '/api/dr/plans/{id}': get(
      'One plan (a scenario name or a custom plan’s id) (scope backups:read)',
      'plan',
      id,
    ),
    '/api/dr/plans/{id}/execute': {
      post: {
        ...post('Execute a plan (scope dr:write)', executeBody, {
          '202': { description: '{recoveryId}: the recovery job' },
          '200': { description: '{rebuilt}: catalog-lost runs at once' },
        }).post,
        parameters: [requestIdHeader, ...parameters('path', id)],
      },
    },
    '/api/dr/recoveries/{id}/validate': {
      post: {
        ...post(
          'Validate a finished recovery: row counts, foreign keys, payment totals (scope dr:write)',
          undefined,
          {
            '200': { description: '{ok, problems, checks}' },
            '409': { description: 'the recovery has not completed' },
          },
        ).post,
        parameters: [requestIdHeader, ...parameters('path', id)],
      },
    },
    '/api/dr/drills': {
      ...get('Drills with measured RTO and RPO, newest first (scope backups:read)', 'drills'),
      ...post('Drill a scenario now, into a scratch database (scope dr:write)', drillBody, {
        '202': { description: '{drillId, recoveryId}' },
      }),
    },
  };
}
