import { readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Removes `dir` and the empty directories beneath it, leaving anything with content (or mounted). */
export async function removeEmptyDirectories(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) if (entry.isDirectory()) await removeEmptyDirectories(join(dir, entry.name));
  await rmdir(dir).catch(() => undefined);
}
