/**
 * Erasure figures: one wedding erased from three copies of the database repository by
 * `wedvault erase` (keys destroyed, the proof read on each copy, the certificate signed). No peer
 * does this per customer; the figures are wall time and the objects the erasure touched.
 */
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Measured } from './measure.js';

export interface ErasureFigures {
  case: string;
  targets: number;
  wall_s: number;
  cpu_s: number;
  peak_rss_mb: number;
  keys_destroyed: number;
  objects_touched: number;
}

export async function benchErasure(input: {
  /** The database bench's WEDVAULT_DATA_DIR (its repository is under targets/local-primary). */
  dataDir: string;
  work: string;
  wedding: string;
  wedvault: (args: string[], dataDir: string, extra?: Record<string, string>) => Promise<Measured>;
}): Promise<ErasureFigures> {
  const root = path.join(input.work, 'erasure');
  rmSync(root, { recursive: true, force: true });
  const names = ['copy-a', 'copy-b', 'copy-c'];
  for (const n of names)
    cpSync(path.join(input.dataDir, 'targets', 'local-primary'), path.join(root, n), { recursive: true });
  const config = path.join(root, 'config.json');
  const targets = names.map((name, i) => ({
    name,
    type: 'local',
    path: path.join(root, name),
    labels: { media: 'disk', location: i === 2 ? 'offsite' : 'local', offsite: i === 2 },
  }));
  writeFileSync(config, JSON.stringify({ targets }));
  try {
    const m = await input.wedvault(
      ['erase', '--wedding', input.wedding, '--reason', 'bench', '--requested-by', 'bench', '--json'],
      root,
      { WEDVAULT_CONFIG: config },
    );
    const cert = JSON.parse(m.stdout) as { targets: { keysDestroyed: string[]; objectsRemoved: number }[] };
    return {
      case: 'erasure-one-wedding-3-targets',
      targets: cert.targets.length,
      wall_s: m.wall_s,
      cpu_s: m.cpu_s,
      peak_rss_mb: m.peak_rss_mb,
      keys_destroyed: cert.targets.reduce((n, t) => n + t.keysDestroyed.length, 0),
      // per target: the key objects removed or rewritten, the ledger entry written, the proof read
      objects_touched: cert.targets.reduce((n, t) => n + t.objectsRemoved + 2, 0),
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
