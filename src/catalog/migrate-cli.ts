/** `npm run migrate`: creates the catalog database if needed and applies pending migrations. */
import { loadConfig } from '../config/index.js';
import { createPool, ensureDatabase } from './db.js';
import { migrate } from './migrate.js';

const config = loadConfig();
await ensureDatabase(config.databaseUrl);
const db = createPool(config.databaseUrl, 1);
try {
  const applied = await migrate(db);
  console.log(applied.length ? `applied: ${applied.join(', ')}` : 'catalog is up to date');
} finally {
  await db.end();
}
