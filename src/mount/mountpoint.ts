import { lstat, readdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { MountpointUnusable } from '../errors/errors';
import { mountsAt } from './mountTable';

/**
 * Checks that `path` can take a mount of ours, returning it absolute: an existing, empty
 * directory with nothing mounted on it. Someone else's mount (another `gitfs-csi mount`'s
 * included) is never taken over, and a directory's content is never hidden.
 */
export async function checkMountpoint(path: string): Promise<string> {
  const absolute = resolve(path);
  // The mount table first: a dead FUSE mount fails every other check with ENOTCONN.
  const mounted = await mountsAt(absolute);
  if (mounted.length > 0) throw new MountpointUnusable(absolute, `is already a mount point (${mounted.map((m) => `${m.fsType} ${m.source}`).join(', ')})`);
  const stats = await lstat(absolute).catch((err: NodeJS.ErrnoException) => {
    throw new MountpointUnusable(absolute, err.code === 'ENOENT' ? 'does not exist' : `cannot be inspected (${err.code})`);
  });
  if (!stats.isDirectory()) throw new MountpointUnusable(absolute, 'is not a directory');
  const entries = await readdir(absolute).catch((err: NodeJS.ErrnoException) => {
    throw new MountpointUnusable(absolute, `cannot be listed (${err.code})`);
  });
  if (entries.length > 0) throw new MountpointUnusable(absolute, `is not empty (${entries.length} entries): its content would be hidden`);
  return absolute;
}
