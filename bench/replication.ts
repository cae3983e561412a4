/** Replication figures: the repository copied to each emulator (MB/s, PUTs per GB), then a no-op second pass. */
import { LocalStorage } from '../src/storage/local.js';
import { createStorage } from '../src/storage/factory.js';
import type { Storage } from '../src/storage/types.js';
import { replicateObjects } from '../src/engine/replicate.js';
import { startAzurite, startGcs, startS3, type Emulator } from '../test/helpers/emulators.js';

export interface ReplicationFigures {
  case: string;
  target: string;
  objects: number;
  bytes: number;
  wall_s: number;
  mb_per_s: number;
  puts: number;
  puts_per_gb: number;
  noop_wall_s: number;
  noop_s_per_10k_objects: number;
}

function countingPuts(s: Storage): Storage & { puts: number } {
  const counted = Object.create(s) as Storage & { puts: number };
  counted.puts = 0;
  counted.put = (key, body, opts) => {
    counted.puts++;
    return s.put(key, body, opts);
  };
  return counted;
}

export async function benchReplication(repoDir: string): Promise<ReplicationFigures[]> {
  const source = new LocalStorage('bench-source', repoDir);
  const objects: { key: string; size: number }[] = [];
  for await (const o of source.list(''))
    if (!o.key.startsWith('locks/')) objects.push({ key: o.key, size: o.size });
  const bytes = objects.reduce((s, o) => s + o.size, 0);
  const out: ReplicationFigures[] = [];
  const starters: [string, () => Promise<Emulator>][] = [
    ['s3', () => startS3({ name: 's3' })],
    ['gcs', () => startGcs({ name: 'gcs' })],
    ['azure', () => startAzurite({ name: 'azure' })],
  ];
  for (const [name, start] of starters) {
    const emu = await start();
    try {
      const dest = countingPuts(createStorage(emu.target, { ...process.env, ...emu.env }));
      const t0 = performance.now();
      await replicateObjects(source, dest, objects, { concurrency: emu.target.concurrency });
      const wall = (performance.now() - t0) / 1000;
      const t1 = performance.now();
      const again = await replicateObjects(source, dest, objects, { concurrency: emu.target.concurrency });
      const noop = (performance.now() - t1) / 1000;
      if (again.copiedObjects !== 0)
        throw new Error(`${name}: second pass copied ${again.copiedObjects} objects`);
      out.push({
        case: `replicate-to-${name}`,
        target: name,
        objects: objects.length,
        bytes,
        wall_s: Math.round(wall * 100) / 100,
        mb_per_s: Math.round(bytes / 1e6 / wall),
        puts: dest.puts,
        puts_per_gb: Math.round((dest.puts / bytes) * 1e9),
        noop_wall_s: Math.round(noop * 1000) / 1000,
        noop_s_per_10k_objects: Math.round((noop / objects.length) * 10_000 * 1000) / 1000,
      });
      console.log(`replicate-to-${name}: ${JSON.stringify(out.at(-1))}`);
    } finally {
      await emu.stop();
    }
  }
  return out;
}
