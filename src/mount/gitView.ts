import { createHash } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { GitView } from '../gitdir/refFiles';
import { MountEntry, overlayOptions } from './mountTable';
import { systemCommand } from './systemCommand';

// A volume's view of `.git` is small files of its own, laid over its commit's tree by overlayfs, so
// the tree mount and its page cache stay shared by every volume of the commit.

/** Where a target's view files live (under the node's state directory): the same place after a restart. */
export function viewDirFor(viewsDir: string, target: string): string {
  return join(viewsDir, createHash('sha256').update(resolve(target)).digest('hex').slice(0, 24));
}

/**
 * Writes the view's files under `dir`, as `.git/…` of the volume's root (`into: 'root'`, for a
 * writable volume's upper or a read-only overlay of the whole tree) or at the top of `dir`
 * (`into: 'gitdir'`, for an overlay of `.git` alone). `no-git` is a whiteout (a 0/0 character
 * device) named `.git`, which hides the tree's.
 */
export async function writeGitView(dir: string, view: GitView, into: 'root' | 'gitdir'): Promise<void> {
  await mkdir(dir, { recursive: true });
  if (view === 'no-git') {
    await rm(join(dir, '.git'), { recursive: true, force: true });
    await systemCommand('mknod', [join(dir, '.git'), 'c', '0', '0']);
    return;
  }
  const gitDir = into === 'root' ? join(dir, '.git') : dir;
  await mkdir(gitDir, { recursive: true });
  await replaceFile(join(gitDir, 'HEAD'), view.refs.head);
  if (view.refs.packedRefs) await replaceFile(join(gitDir, 'packed-refs'), view.refs.packedRefs);
}

/** Whether a mount is a read-only overlay of this view (its top lower directory). */
export function isViewOf(mount: MountEntry, viewDir: string): boolean {
  return overlayOptions(mount).some((option) => option.startsWith(`lowerdir=${viewDir}:`));
}

async function replaceFile(file: string, content: string): Promise<void> {
  const tmp = `${file}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, file);
}
