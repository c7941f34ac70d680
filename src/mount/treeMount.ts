import { mkdir, rmdir } from 'node:fs/promises';
import Fuse from 'fuse-native';
import { GitfsError } from '../errors/errors';
import { withinDeadline } from '../fuse/deadline';
import { TreeFilesystem } from '../fuse/treeFilesystem';
import { keepSignalsOffFuseThreads } from './fuseThreadSignals';
import { detachAll, mountsAt } from './mountTable';

/** How tree mounts (and bind mounts of them) show in the mount table. */
export const TREE_FS_TYPE = 'fuse.gitfs';

/** Kernel caching for immutable content: a commit's tree and blobs never change. */
const CACHE_SECONDS = 3600;

/** Longest a new FUSE mount may take to come up (it takes milliseconds). */
const MOUNT_START_MS = 30_000;

/**
 * fuse-native builds libfuse's option string from a fixed list; the raw options it lacks
 * (read-only, negative-lookup caching) are appended here. Only options libfuse 2 knows:
 * an unknown one leaves a dead mount behind.
 */
class ReadOnlyFuse extends Fuse {
  override _fuseOptions(): string {
    const base = super._fuseOptions();
    const extra = `ro,negative_timeout=${CACHE_SECONDS}`;
    return base ? `${base},${extra}` : `-o${extra}`;
  }
}

/** One FUSE mount of one commit's tree on this node; consumers see it through bind mounts. */
export class TreeMount {
  private fuse: ReadOnlyFuse | undefined;

  constructor(readonly dir: string, readonly filesystem: TreeFilesystem, private readonly label: string) {}

  get mounted(): boolean {
    return this.fuse !== undefined;
  }

  async mount(): Promise<void> {
    if (this.fuse) return;
    // A server killed without unmounting leaves a dead mount that would refuse a new one.
    if ((await mountsAt(this.dir)).length > 0) await detachAll(this.dir);
    await mkdir(this.dir, { recursive: true });
    keepSignalsOffFuseThreads();
    const fuse = new ReadOnlyFuse(this.dir, this.filesystem.operations(), {
      allowOther: true,
      defaultPermissions: true,
      kernelCache: true,
      entryTimeout: CACHE_SECONDS,
      attrTimeout: CACHE_SECONDS,
      fsname: `gitfs:${this.label}`.replace(/[,\s\\]/g, '_').slice(0, 200),
      subtype: TREE_FS_TYPE.replace('fuse.', ''),
      timeout: this.filesystem.longestOperationMs,
    });
    const mounted = new Promise<void>((resolve, reject) =>
      fuse.mount((err) => (err ? reject(new GitfsError('internal', `cannot mount FUSE at ${this.dir}: ${err.message}`, { cause: err })) : resolve())),
    );
    // fuse-native calls back only once the kernel's INIT has been answered: never wait for that forever.
    try {
      await withinDeadline(mounted, MOUNT_START_MS, () => new GitfsError('internal', `the FUSE mount at ${this.dir} did not start within ${MOUNT_START_MS / 1000} s`));
    } catch (err) {
      await detachAll(this.dir).catch(() => undefined);
      throw err;
    }
    this.fuse = fuse;
  }

  async unmount(): Promise<void> {
    const fuse = this.fuse;
    if (!fuse) return;
    this.fuse = undefined;
    await new Promise<void>((resolve) => fuse.unmount(() => resolve()));
    if ((await mountsAt(this.dir)).length > 0) await detachAll(this.dir);
    await rmdir(this.dir).catch(() => undefined);
  }
}
