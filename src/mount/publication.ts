import { mkdir, rm, rmdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { GitfsError, OverlayUnavailable } from '../errors/errors';
import { MS_BIND, MS_NODEV, MS_NOSUID, MS_RDONLY, MS_REMOUNT } from '../fuse/fuseDevice';
import { GitView } from '../gitdir/refFiles';
import { isViewOf, writeGitView } from './gitView';
import { kernelMount } from './kernelMount';
import { detachAll, MountEntry, mountsAt, OVERLAY_FS_TYPE, refuseForeignMounts } from './mountTable';
import { TREE_FS_TYPE } from './treeMount';

const READ_ONLY = MS_RDONLY | MS_NOSUID | MS_NODEV;

/** A volume's own view of `.git` (gitView), with the directory that holds its files. */
export interface ViewOfVolume {
  dir: string;
  git: GitView;
}

/**
 * A consumer's view of a tree mount at the consumer's own path: a read-only bind mount, which
 * shares the one FUSE mount (and its kernel caches) beneath. A volume's ref adds a read-only
 * overlay of `.git` alone (its HEAD and packed-refs over the tree's); a volume without `.git` is a
 * read-only overlay of the tree with `.git` whited out. `keepExisting`: an overlay of ours already
 * at the target is over a live tree (this process made it, or the tree was taken over).
 */
export async function publish(treeDir: string, target: string, options: { view?: ViewOfVolume; keepExisting: boolean }): Promise<void> {
  const path = resolve(target);
  const view = options.view;
  // First clear an earlier mount of ours (a dead one would fail even the mkdir); never someone else's.
  const existing = await mountsAt(path);
  refuseForeignMounts(path, existing, (m) => isOurs(m, view?.dir));
  if (await isLive(existing, treeDir, path, view, options.keepExisting)) return;
  if (existing.length > 0) await detachAll(path);
  await mkdir(path, { recursive: true });
  try {
    if (view?.git === 'no-git') {
      await writeGitView(view.dir, view.git, 'root');
      await mountReadOnlyOverlay([view.dir, treeDir], path);
      return;
    }
    // A bind is made writable; a remount makes it read-only (and, as the tree is, without setuid files or devices).
    await kernelMount(treeDir, path, '', MS_BIND);
    await kernelMount('', path, '', MS_REMOUNT | MS_BIND | READ_ONLY);
    if (view) {
      await writeGitView(view.dir, view.git, 'gitdir');
      // Without overlayfs the volume still works, with the tree's own .git (HEAD detached at the commit).
      await mountReadOnlyOverlay([view.dir, join(treeDir, '.git')], join(path, '.git')).catch((err) => {
        if (!(err instanceof OverlayUnavailable)) throw err;
      });
    }
  } catch (err) {
    // Lazily: the bind and the overlay of .git under it go together.
    await detachAll(path);
    if (view) await rm(view.dir, { recursive: true, force: true });
    throw err;
  }
}

/** Removes the volume's mounts (and the view's files); with `removeDir`, also the (now empty) target directory. */
export async function unpublish(target: string, options: { removeDir: boolean; viewDir?: string }): Promise<void> {
  const path = resolve(target);
  // Only our own mounts are taken down: whatever else is mounted at a path stays, and so does a directory with content.
  if ((await mountsAt(path)).some((m) => isOurs(m, options.viewDir))) await detachAll(path);
  if (options.viewDir) await rm(options.viewDir, { recursive: true, force: true });
  if (!options.removeDir) return;
  await rmdir(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return;
    throw new GitfsError('internal', `cannot remove ${path}: ${err.code}; it holds something other than a gitfs-csi volume, left as it is`);
  });
}

function isOurs(mount: MountEntry, viewDir: string | undefined): boolean {
  return mount.fsType === TREE_FS_TYPE || (viewDir !== undefined && isViewOf(mount, viewDir));
}

/** Whether the target already shows this tree as this volume should (it outlived a restart of its server): containers use it, leave it. */
async function isLive(existing: MountEntry[], treeDir: string, path: string, view: ViewOfVolume | undefined, keepExisting: boolean): Promise<boolean> {
  if (existing.length !== 1) return false;
  if (view?.git === 'no-git') return keepExisting && isViewOf(existing[0], view.dir);
  const tree = (await mountsAt(treeDir)).find((m) => m.fsType === TREE_FS_TYPE);
  if (!tree || existing[0].device !== tree.device) return false;
  return !view || (await mountsAt(join(path, '.git'))).some((m) => isViewOf(m, view.dir));
}

/** A read-only overlay of `layers` (the first on top): no upper directory, so nothing can be written. */
async function mountReadOnlyOverlay(layers: string[], path: string): Promise<void> {
  await kernelMount('overlay', path, OVERLAY_FS_TYPE, READ_ONLY, `lowerdir=${layers.join(':')}`);
}
