/**
 * Bytes of new or changed files per wedding since a moment, for event triggers: one walk of a
 * directory source, each file's scope by the source's rules, its size counted when its mtime is
 * newer. Bucket sources are not scanned here.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { tenantOfScope } from '../api.js';
import { scopeMapper, type ScopeRule } from './index.js';

export async function uploadedBytes(
  dir: string,
  scopes: ScopeRule[],
  sinceMs: number,
): Promise<Map<string, number>> {
  const scopeOf = scopeMapper(scopes);
  const out = new Map<string, number>();
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isFile()) continue;
    const abs = path.join(e.parentPath, e.name);
    const st = await stat(abs).catch(() => undefined);
    if (!st || st.mtimeMs <= sinceMs) continue;
    const tenant = tenantOfScope(scopeOf(path.relative(dir, abs).split(path.sep).join('/')));
    if (!tenant.startsWith('wedding:')) continue;
    const id = tenant.slice('wedding:'.length);
    out.set(id, (out.get(id) ?? 0) + st.size);
  }
  return out;
}
