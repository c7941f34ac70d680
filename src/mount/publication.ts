import { mkdir, rmdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { detachAll, mountsAt } from './mountTable';
import { systemCommand } from './systemCommand';

/**
 * A consumer's view of a tree mount: a read-only bind mount at the consumer's own path.
 * Bind mounts are cheap and all share the one FUSE mount (and its kernel caches) beneath.
 */
export async function publish(treeDir: string, target: string): Promise<void> {
  const path = resolve(target);
  // First clear what is there: a dead mount (its server gone) would fail even the mkdir.
  if ((await mountsAt(path)).length > 0) await detachAll(path);
  await mkdir(path, { recursive: true });
  await systemCommand('mount', ['--bind', treeDir, path]);
  try {
    await systemCommand('mount', ['-o', 'remount,bind,ro', path]);
  } catch (err) {
    await detachAll(path);
    throw err;
  }
}

/** Removes the bind mount; with `removeDir`, also the (now empty) target directory. */
export async function unpublish(target: string, options: { removeDir: boolean }): Promise<void> {
  const path = resolve(target);
  await detachAll(path);
  if (options.removeDir) await rmdir(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}
