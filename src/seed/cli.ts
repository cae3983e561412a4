/** `npm run seed -- --scale N`: the demo wedding database and portfolio tree. */
import { Command } from 'commander';
import { seedDatabase } from './database.js';
import { seedFiles } from './files.js';

const program = new Command('seed')
  .option('--scale <n>', 'scale 1 ≈ 1 GB of tables and 3 GB of files', '0.01')
  .option('--files-scale <n>', 'files scale (default: --scale)')
  .option(
    '--database-url <url>',
    'database to create',
    process.env.SOURCE_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/wedvault_demo',
  )
  .option('--files-dir <dir>', 'portfolio tree', process.env.WEDVAULT_FILES_DIR ?? './data/files')
  .option('--force', 'drop the database first')
  .option('--no-files', 'database only');
program.parse();
const o = program.opts<{
  scale: string;
  filesScale?: string;
  databaseUrl: string;
  filesDir: string;
  force?: boolean;
  files: boolean;
}>();
const scale = Number(o.scale);
const filesScale = Number(o.filesScale ?? o.scale);
if (!(scale > 0) || !(filesScale >= 0)) {
  console.error('seed: --scale and --files-scale must be positive numbers');
  process.exit(64);
}
const t0 = Date.now();
try {
  await seedDatabase(o.databaseUrl, { scale, force: o.force });
} catch (err) {
  console.error(`seed: ${(err as Error).message}`);
  process.exit(1);
}
console.log(
  `database ${o.databaseUrl.replace(/\/\/[^@]*@/, '//')} seeded at scale ${scale} in ${(Date.now() - t0) / 1000}s`,
);
if (o.files && filesScale > 0) {
  const r = await seedFiles(o.filesDir, { scale: filesScale });
  console.log(`files: ${r.files} (${(r.bytes / 1e6).toFixed(0)} MB) in ${o.filesDir}`);
}
