/** zod schemas as OpenAPI 3.1 pieces (zod 4's own JSON Schema output; 3.1 speaks JSON Schema 2020-12). */
import { z } from 'zod';

type Schema = Record<string, unknown>;

/** What a request must look like: coercions and defaults are described as the client sends them. */
export function jsonSchema(s: z.ZodType): Schema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(s, { io: 'input' }) as Schema;
  return rest;
}

export const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });

/** One OpenAPI parameter per property of an object schema, in its order; path ones always required. */
export function parameters(where: 'path' | 'query' | 'header', s: z.ZodObject): Schema[] {
  const { properties = {}, required = [] } = jsonSchema(s) as {
    properties?: Record<string, Schema>;
    required?: string[];
  };
  return Object.entries(properties).map(([name, schema]) => {
    const { description, ...rest } = schema;
    return {
      name,
      in: where,
      ...(description !== undefined && { description }),
      ...((where === 'path' || required.includes(name)) && { required: true }),
      schema: rest,
    };
  });
}
