import { createHash } from 'node:crypto';
import { access, lstat, mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { formatBytes } from '../config/byteSize';
import { GitfsError, InvalidArgument, NoSpace } from '../errors/errors';
import { fuseDevice, MS_NODEV, MS_NOSUID } from '../fuse/fuseDevice';
import { GitView } from '../gitdir/refFiles';
import { writeGitView } from './gitView';
import { formatImage, LayerSpares } from './layerSpares';
import { detachAll, MountEntry, mountsAt, OVERLAY_FS_TYPE, overlayOptions, refuseForeignMounts } from './mountTable';
import { kernelMount } from './kernelMount';
import { TREE_FS_TYPE } from './treeMount';

/** The smallest write limit a layer's own file system can hold (ext4's metadata included). */
export const MIN_WRITE_LIMIT_BYTES = 16 * 1024 * 1024;
/** A writable volume's write limit when neither it nor the command names one. */
export const DEFAULT_WRITE_LIMIT_BYTES = 1024 ** 3;

/** Refuses a write limit under what a layer can hold, or over `max` (the flag that set it named in the error). */
export function checkWriteLimit(bytes: number, field: string, max?: { bytes: number; name: string }): number {
  if (max && bytes > max.bytes) throw new InvalidArgument(field, `${formatBytes(bytes)} is over this node's maximum of ${formatBytes(max.bytes)} (${max.name})`);
  if (bytes < MIN_WRITE_LIMIT_BYTES) throw new InvalidArgument(field, `${formatBytes(bytes)} is under the smallest writable layer, ${formatBytes(MIN_WRITE_LIMIT_BYTES)}`);
  return bytes;
}

/** Where a target's layer lives under the node's layers directory: the same place after a restart. */
export function layerDirFor(layersDir: string, target: string): string {
  return join(layersDir, createHash('sha256').update(resolve(target)).digest('hex').slice(0, 24));
}

/**
 * A writable volume: kernel overlayfs at the consumer's path, over the commit's shared tree mount.
 * The upper and work directories live in a file system of the volume's own (prepareLayer): an ext4
 * image of the volume's write limit, allocated up front on the node's disk and loop-mounted. So past
 * the limit the writer gets ENOSPC from that file system alone, and a full node disk fails the
 * publish, never a write. Files nobody writes are read through the shared tree; copy-up, whiteouts
 * and renames are overlayfs's own. Mounts the overlay over a prepared layer; a failure leaves the
 * layer as it was.
 */
export async function mountWritable(treeDir: string, target: string, layerDir: string, options: { keepExisting: boolean; git?: GitView }): Promise<void> {
  const path = resolve(target);
  const existing = await mountsAt(path);
  // Ours already, over a tree mount that is still served (a retried publish, or a restart that kept
  // the tree): containers use it; keep it. Over a tree mounted anew, a new overlay takes the same writes.
  if (options.keepExisting && existing.length === 1 && isLayerOf(existing[0], layerDir)) return;
  refuseForeignMounts(path, existing, (m) => isLayerOf(m, layerDir) || m.fsType === TREE_FS_TYPE);
  if (existing.length > 0) await detachAll(path);
  await mkdir(path, { recursive: true });
  const fs = join(layerDir, 'fs');
  // The volume's own HEAD and ref (or no .git) start in its layer, unless its .git has been written already.
  const upperGit = join(fs, 'upper', '.git');
  if (options.git && !(await lstat(upperGit).then(() => true, () => false))) await writeGitView(join(fs, 'upper'), options.git, 'root');
  const overlay = [`lowerdir=${treeDir}`, `upperdir=${join(fs, 'upper')}`, `workdir=${join(fs, 'work')}`, 'redirect_dir=on', 'index=off', 'metacopy=off'];
  await kernelMount('overlay', path, OVERLAY_FS_TYPE, 0, overlay.join(','));
}

/** Takes the overlay off `target` (only ours) and deletes the layer with every write in it. */
export async function removeWritable(target: string, layerDir: string): Promise<void> {
  if (!(await access(layerDir).then(() => true, () => false))) return; // a read-only volume's target
  const path = resolve(target);
  if ((await mountsAt(path)).some((m) => isLayerOf(m, layerDir))) await detachAll(path);
  // Lazily: a process still holding a file keeps the layer until it lets go; the loop device then goes too (autoclear).
  await detachAll(join(layerDir, 'fs'));
  await rm(layerDir, { recursive: true, force: true });
}

/** Whether a mount is the overlay of this layer (its upper directory is inside it). */
function isLayerOf(mount: MountEntry, layerDir: string): boolean {
  return overlayOptions(mount).includes(`upperdir=${join(layerDir, 'fs', 'upper')}`);
}

/**
 * The layer's own file system, mounted, with its upper and work directories: everything a writable
 * volume needs but the tree, so a publish makes it while the tree is prepared. Idempotent; an image
 * left by a restart that lost only the overlay is mounted again with its writes.
 */
export async function prepareLayer(layerDir: string, limitBytes: number, spares: LayerSpares): Promise<void> {
  const fs = join(layerDir, 'fs');
  if ((await mountsAt(fs)).length === 0) {
    await mkdir(fs, { recursive: true });
    const image = join(layerDir, 'layer.img');
    if (!(await access(image).then(() => true, () => false))) await createImage(image, limitBytes, spares);
    // System calls, not mount(8) and losetup: no helper process on the way to ready. Direct I/O from
    // the loop device to its image: no second copy of the writes in the page cache, and a write-heavy
    // step runs about 1.5× faster; where the node's file system cannot, the kernel leaves it buffered.
    try {
      await fuseDevice().mountLoopAsync(image, fs, 'ext4', MS_NODEV | MS_NOSUID, '', true);
    } catch (err) {
      throw new GitfsError('internal', `cannot mount the writable layer ${image}: ${(err as Error).message}`, { cause: err });
    }
  }
  await mkdir(join(fs, 'upper'), { recursive: true });
  await mkdir(join(fs, 'work'), { recursive: true });
}

/** A formatted image, a spare if one is ready, with all of its space allocated on the node's disk. */
async function createImage(image: string, limitBytes: number, spares: LayerSpares): Promise<void> {
  if (!(await spares.take(limitBytes, image))) await formatImage(image, limitBytes);
  spares.replenish(limitBytes);
  try {
    await fuseDevice().fallocateAsync(image, limitBytes);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw new NoSpace(`the node's disk cannot hold a writable layer of ${limitBytes} bytes (the volume's write limit)`, { cause: err });
    throw new GitfsError('internal', `cannot allocate the writable layer ${image}: ${(err as Error).message}`, { cause: err });
  }
}
