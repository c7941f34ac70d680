import { readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readMountTable } from './mountTable';

/**
 * Removes `dir` and the empty directories beneath it, leaving anything with content. It never
 * looks inside a mount point: a tree mount left for a successor has no server until then, and
 * listing it would wait for one.
 */
export async function removeEmptyDirectories(dir: string): Promise<void> {
  const mountPoints = new Set((await readMountTable()).map((m) => m.mountPoint));
  const remove = async (path: string): Promise<void> => {
    if (mountPoints.has(path)) return;
    const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) if (entry.isDirectory()) await remove(join(path, entry.name));
    await rmdir(path).catch(() => undefined);
  };
  await remove(dir);
}
