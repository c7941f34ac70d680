import { mkdir, mkdtemp, rmdir } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { GitfsError } from '../errors/errors';
import { removeEmptyDirectories } from '../mount/emptyDirectories';
import { detachAll, OVERLAY_FS_TYPE, readMountTable } from '../mount/mountTable';
import { unpublish } from '../mount/publication';
import { TREE_FS_TYPE } from '../mount/treeMount';

/**
 * Where `gitfs-csi mount` keeps things by default. Root: the machine's places. A user: the XDG
 * base directories (`$XDG_CACHE_HOME` or ~/.cache for the cache that later mounts reuse,
 * `$XDG_RUNTIME_DIR` for state that lives as long as the process), else a private temporary directory.
 */
export function defaultCacheDir(asUser: boolean): string {
  if (!asUser) return '/var/cache/gitfs-csi';
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'gitfs-csi');
}

export interface StateDir {
  dir: string;
  /** Removes what was created for this process (empty directories only: never a mount's content). */
  remove(): Promise<void>;
}

/** The process's state directory, created; `given` is --state-dir. */
export async function openStateDir(given: string | undefined, asUser: boolean): Promise<StateDir> {
  if (given !== undefined) {
    const dir = resolve(given);
    const top = await makeDir(dir, 'the state directory (--state-dir)');
    return { dir, remove: async () => (top ? removeUpTo(dir, top) : undefined) };
  }
  const runtime = asUser ? process.env.XDG_RUNTIME_DIR : '/run';
  // The shared parent stays: another process may be creating its own directory in it right now.
  const dir = runtime ? join(runtime, 'gitfs-csi', `mount-${process.pid}`) : await mkdtemp(join(tmpdir(), 'gitfs-csi-mount-'));
  if (runtime) await makeDir(dir, 'the state directory');
  return { dir, remove: () => removeEmptyDirectories(dir) };
}

/** mkdir -p, with an error naming the directory and what it is for; the top directory it created, if any. */
export async function makeDir(dir: string, what: string): Promise<string | undefined> {
  try {
    return await mkdir(dir, { recursive: true });
  } catch (err) {
    throw new GitfsError('internal', `cannot create ${what} ${dir}: ${(err as NodeJS.ErrnoException).code}`, { cause: err });
  }
}

async function removeUpTo(dir: string, top: string): Promise<void> {
  await removeEmptyDirectories(dir);
  for (let path = dirname(dir); path.length >= top.length && path !== dirname(path); path = dirname(path)) await rmdir(path).catch(() => undefined);
}

/**
 * A third signal's way out: detaches our mounts (the target, a writable one's overlay included, and
 * any tree mount of this state directory) at once, lazily. The cleanup still running removes the layer.
 */
export async function detachNow(mountpoint: string, stateDir: string | undefined): Promise<void> {
  const table = await readMountTable();
  if (table.some((m) => m.mountPoint === mountpoint && m.fsType === OVERLAY_FS_TYPE)) await detachAll(mountpoint).catch(() => undefined);
  const ours = table.filter((m) => m.fsType === TREE_FS_TYPE && (m.mountPoint === mountpoint || (stateDir && m.mountPoint.startsWith(`${stateDir}/`))));
  for (const m of ours) await unpublish(m.mountPoint, { removeDir: false }).catch(() => undefined);
}
