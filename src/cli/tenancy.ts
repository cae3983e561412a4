/** `wedvault tenancy`: the classification of the configured database's tables, one line each. */
import pg from 'pg';
import type { PostgresSourceConfig } from '../config/index.js';
import { readTenancyFacts } from '../engine/postgres/catalog.js';
import { classifyTenancy, describeTenancy, tableLabel, tenancySettings } from '../engine/postgres/tenancy.js';

export async function printTenancy(source: PostgresSourceConfig, json: boolean): Promise<void> {
  const client = new pg.Client({ connectionString: source.url });
  await client.connect();
  try {
    const tables = classifyTenancy(await readTenancyFacts(client), tenancySettings(source));
    console.log(
      json
        ? JSON.stringify(tables, null, 2)
        : tables.map((t) => `${tableLabel(t)}: ${describeTenancy(t)}`).join('\n') || '(no tables)',
    );
  } finally {
    await client.end();
  }
}
