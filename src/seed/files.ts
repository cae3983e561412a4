/** Builds a portfolio tree: photo-like incompressible files, some duplicated under other names, and documents. */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export async function seedFiles(
  dir: string,
  opts: { scale: number },
): Promise<{ files: number; bytes: number }> {
  const totalBytes = Math.max(1 << 20, Math.round(opts.scale * 3 * 1024 ** 3));
  const photo = 4 << 20;
  const photos = Math.max(1, Math.round((totalBytes * 0.9) / photo));
  const suppliers = Math.max(1, Math.ceil(photos / 25));
  let files = 0;
  let bytes = 0;
  for (let i = 0; i < photos; i++) {
    const s = 1 + (i % suppliers);
    const d = path.join(dir, 'suppliers', String(s));
    await mkdir(d, { recursive: true });
    const size = photo + ((i * 7919) % (1 << 20));
    await writeFile(path.join(d, `photo-${i}.jpg`), randomBytes(size));
    files++;
    bytes += size;
    // one photo in ten also sits in a wedding album under another name
    if (i % 10 === 0) {
      const album = path.join(dir, 'weddings', String(1 + (i % 97)), 'album');
      await mkdir(album, { recursive: true });
      await copyFile(path.join(d, `photo-${i}.jpg`), path.join(album, `favourite-${i}.jpg`));
      files++;
      bytes += size;
    }
  }
  const docs = Math.max(1, Math.round((totalBytes * 0.1) / (256 << 10)));
  for (let i = 0; i < docs; i++) {
    const d = path.join(dir, 'weddings', String(1 + (i % 97)), 'documents');
    await mkdir(d, { recursive: true });
    const text = `Contract ${i}\nThe supplier agrees to attend the ceremony at the venue.\n`.repeat(4000);
    await writeFile(path.join(d, `contract-${i}.txt`), text);
    files++;
    bytes += text.length;
  }
  return { files, bytes };
}
