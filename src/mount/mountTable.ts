import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { GitfsError } from '../errors/errors';
import { systemCommand } from './systemCommand';

export const OVERLAY_FS_TYPE = 'overlay';

export interface MountEntry {
  /** major:minor of the mounted file system: bind mounts of one FUSE mount share it. */
  device: string;
  mountPoint: string;
  root: string;
  fsType: string;
  source: string;
  options: string;
  /** The file system's own options (overlayfs: its lower, upper and work directories). */
  superOptions: string;
}

/** An overlay mount's own options (`lowerdir=…`, `upperdir=…`); none for any other mount. */
export function overlayOptions(mount: MountEntry): string[] {
  return mount.fsType === OVERLAY_FS_TYPE ? mount.superOptions.split(',') : [];
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** The mounts this process sees, from /proc/self/mountinfo (or another process's, in its own mount namespace). */
export async function readMountTable(mountinfo = '/proc/self/mountinfo'): Promise<MountEntry[]> {
  const text = await readFile(mountinfo, 'utf8');
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ');
    const fields = left.split(' ');
    const [fsType, source, superOptions] = (right ?? '').split(' ');
    entries.push({ device: fields[2], root: unescape(fields[3]), mountPoint: unescape(fields[4]), options: fields[5], fsType, source: unescape(source ?? ''), superOptions: unescape(superOptions ?? '') });
  }
  return entries;
}

export async function mountsAt(path: string): Promise<MountEntry[]> {
  const target = resolve(path);
  return (await readMountTable()).filter((m) => m.mountPoint === target);
}

/** Refuses a path where something not ours (`ours` says which) is mounted: a mount of ours never hides another. */
export function refuseForeignMounts(path: string, mounts: MountEntry[], ours: (mount: MountEntry) => boolean): void {
  const foreign = mounts.find((m) => !ours(m));
  if (foreign) throw new GitfsError('internal', `${path} already has a ${foreign.fsType} file system mounted that is not a gitfs-csi volume`);
}

/**
 * Detaches whatever is mounted at `path`, even a dead FUSE mount. Someone else (a third Ctrl-C, a
 * concurrent cleanup) may detach a mount between our look and our call: only a mount still there
 * when we look again is a failure.
 */
export async function detachAll(path: string): Promise<void> {
  let failure: unknown;
  for (let i = 0; i < 8 && (await mountsAt(path)).length > 0; i++) {
    failure = await systemCommand('umount', ['-l', resolve(path)])
      .catch(() => systemCommand('fusermount3', ['-uz', resolve(path)]))
      .then(() => undefined, (err: unknown) => err);
  }
  if (failure !== undefined && (await mountsAt(path)).length > 0) throw failure;
}
