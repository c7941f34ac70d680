import { mkdir, rmdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { GitfsError } from '../errors/errors';
import { detachAll, mountsAt, refuseForeignMounts } from './mountTable';
import { TREE_FS_TYPE } from './treeMount';
import { systemCommand } from './systemCommand';

/**
 * A consumer's view of a tree mount: a read-only bind mount at the consumer's own path.
 * Bind mounts are cheap and all share the one FUSE mount (and its kernel caches) beneath.
 */
export async function publish(treeDir: string, target: string): Promise<void> {
  const path = resolve(target);
  // First clear an earlier mount of ours (a dead one would fail even the mkdir); never someone else's.
  const existing = await mountsAt(path);
  refuseForeignMounts(path, existing, (m) => m.fsType === TREE_FS_TYPE);
  // Already a view of this very tree mount (it outlived a restart of its server): containers use it, leave it.
  const tree = (await mountsAt(treeDir)).find((m) => m.fsType === TREE_FS_TYPE);
  if (tree && existing.length === 1 && existing[0].device === tree.device) return;
  if (existing.length > 0) await detachAll(path);
  await mkdir(path, { recursive: true });
  // One mount(8) makes the bind and then remounts it read-only (two system calls, one process).
  try {
    await systemCommand('mount', ['--bind', '-o', 'ro', treeDir, path]);
  } catch (err) {
    await detachAll(path);
    throw err;
  }
}

/** Removes the bind mount; with `removeDir`, also the (now empty) target directory. */
export async function unpublish(target: string, options: { removeDir: boolean }): Promise<void> {
  const path = resolve(target);
  // Only our own mounts are taken down: whatever else is mounted at a path stays, and so does a directory with content.
  if ((await mountsAt(path)).some((m) => m.fsType === TREE_FS_TYPE)) await detachAll(path);
  if (!options.removeDir) return;
  await rmdir(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return;
    throw new GitfsError('internal', `cannot remove ${path}: ${err.code}; it holds something other than a gitfs-csi volume, left as it is`);
  });
}
