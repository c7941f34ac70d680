import { GitfsError, OverlayUnavailable } from '../errors/errors';
import { fuseDevice } from '../fuse/fuseDevice';
import { OVERLAY_FS_TYPE } from './mountTable';

/**
 * mount(2) without a helper process, on a thread of libuv's pool: a mount that looks into one of
 * our FUSE trees (a bind of it, an overlay over it) may need requests the main thread answers, so it
 * never runs on that thread. A kernel without overlayfs is OverlayUnavailable.
 */
export async function kernelMount(source: string, target: string, fsType: string, flags: number, data = ''): Promise<void> {
  try {
    await fuseDevice().mountAsync(source, target, fsType, flags, data);
  } catch (err) {
    if (fsType === OVERLAY_FS_TYPE && (err as NodeJS.ErrnoException).code === 'ENODEV') {
      throw new OverlayUnavailable("this node's kernel has no overlayfs, which writable volumes and volumes without .git need; read-only volumes still work", { cause: err });
    }
    throw new GitfsError('internal', (err as Error).message, { cause: err });
  }
}
