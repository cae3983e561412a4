// Runs the Cloud Storage emulator from firebase-tools (pinned 15.34.2) without Java: only the GCS JSON API is used, and it never evaluates rules.
// Usage: node gcs-emulator-launcher.mjs PORT [PROJECT_ID]. Prints "ready PORT" when it listens.
import { createRequire } from 'node:module';
import process from 'node:process';

const require = createRequire(import.meta.url);
const port = Number(process.argv[2]);
const projectId = process.argv[3] ?? 'demo-test';
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('usage: gcs-emulator-launcher.mjs PORT [PROJECT_ID]\n');
  process.exit(2);
}

const { StorageEmulator } = require('firebase-tools/lib/emulator/storage');
const { EmulatorRegistry } = require('firebase-tools/lib/emulator/registry');
const { StorageRulesRuntime } = require('firebase-tools/lib/emulator/storage/rules/runtime');

// The rules runtime needs Java and a downloaded jar; the JSON API does not consult it.
const noop = async () => {};
StorageRulesRuntime.prototype.start = noop;
StorageRulesRuntime.prototype.stop = noop;

const emulator = new StorageEmulator({
  projectId,
  host: '127.0.0.1',
  port,
  rules: { name: 'storage.rules', content: '' },
  auto_download: false,
});
emulator.rulesManager.start = noop;
emulator.rulesManager.stop = noop;

await EmulatorRegistry.start(emulator);
process.stdout.write(`ready ${port}\n`);

const shutdown = () => {
  EmulatorRegistry.stop(emulator.getName()).finally(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
