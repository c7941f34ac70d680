import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { mkdir, rmdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FuseUnavailable, GitfsError } from '../errors/errors';
import { fuseDevice, MNT_DETACH, MS_NODEV, MS_NOSUID, MS_RDONLY } from '../fuse/fuseDevice';
import { answerInit } from '../fuse/initHandshake';
import { has, KernelProfile, Negotiated } from '../fuse/initNegotiation';
import { Init, Notify, OUT_HEADER } from '../fuse/protocol';
import { ServingThreads } from '../fuse/servingThreads';
import { TreeFilesystem } from '../fuse/treeFilesystem';
import { Logger, silentLogger } from '../log/logger';
import { FuseHolder } from './fuseHolder';
import { fusermountMount, fusermountUnmount } from './fusermount';
import { checkMountpoint } from './mountpoint';
import { detachAll, mountsAt } from './mountTable';

/** How tree mounts (and bind mounts of them) show in the mount table. */
export const TREE_FS_TYPE = 'fuse.gitfs';

/**
 * A process without root mounts through fusermount3, as libfuse does, and serves files as its own;
 * it cannot bind mount either, so its trees are mounted at their consumers' targets themselves.
 */
export const MOUNTS_AS_USER = process.geteuid?.() !== 0;
const OWNER = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

/** Longest a new FUSE mount may take to come up (it takes milliseconds). */
const MOUNT_START_MS = 30_000;

/** The node's FUSE machinery that every tree mount shares. */
export interface FuseContext {
  threads: ServingThreads;
  /** Negotiate as if the kernel were this old (tests; nodes that must not use newer features). */
  kernelProfile?: KernelProfile;
  /** Keeps each connection's descriptor, so that mounts outlive this process (the node plugin only). */
  holder?: FuseHolder;
  log?: Logger;
}

/**
 * One FUSE mount of one commit's tree on this node; consumers see it through bind mounts. With a
 * holder, a mount that an earlier process of ours served and left to the holder is taken over
 * instead of mounted again, so the views that running containers hold keep working.
 */
export class TreeMount {
  private fd: number | undefined;
  private negotiated_: Negotiated | undefined;
  private adopted_ = false;

  constructor(
    readonly dir: string,
    readonly filesystem: TreeFilesystem,
    private readonly label: string,
    private readonly fuse: FuseContext,
    /**
     * `atTarget`: `dir` is the consumer's own mountpoint (a user cannot bind mount, so the tree is
     * mounted there directly): it must be an empty directory with nothing mounted on it, and is
     * never created, cleared or removed.
     */
    private readonly place: { atTarget?: boolean } = {},
  ) {}

  get mounted(): boolean {
    return this.fd !== undefined;
  }

  get negotiated(): Negotiated | undefined {
    return this.negotiated_;
  }

  /** Whether this mount was served by an earlier process and taken over from the holder. */
  get adopted(): boolean {
    return this.adopted_;
  }

  private get log(): Logger {
    return this.fuse.log ?? silentLogger;
  }

  async mount(): Promise<void> {
    if (this.fd !== undefined) return;
    if (await this.adopt()) return;
    if (this.place.atTarget) await checkMountpoint(this.dir);
    else {
      // A server killed without unmounting leaves a dead mount that would refuse a new one.
      if ((await mountsAt(this.dir)).length > 0) await detachAll(this.dir);
      // Its parent (the repository's) may be going as its last other tree goes: then once more.
      await mkdir(this.dir, { recursive: true }).catch(() => mkdir(this.dir, { recursive: true }));
    }
    const source = `gitfs:${this.label}`.replace(/[,\s\\]/g, '_').slice(0, 200);
    let fd: number;
    try {
      fd = MOUNTS_AS_USER ? await fusermountMount(this.dir, `ro,nosuid,nodev,default_permissions,subtype=${TREE_FS_TYPE.slice('fuse.'.length)},fsname=${source}`) : mountAsRoot(this.dir, source);
    } catch (err) {
      if (!this.place.atTarget) await rmdir(this.dir).catch(() => undefined);
      throw err;
    }
    try {
      this.negotiated_ = await answerInit(fd, MOUNT_START_MS, this.fuse.kernelProfile);
      this.filesystem.serve(fd, this.negotiated_, this.fuse.threads, OWNER);
    } catch (err) {
      await this.detach();
      closeSync(fd);
      if (!this.place.atTarget) await rmdir(this.dir).catch(() => undefined);
      throw err;
    }
    this.fd = fd;
    this.leaveWithHolder(fd, source);
  }

  /** Unmounts: the holder lets go, the connection ends, the directory goes (unless it is the consumer's own). */
  async unmount(): Promise<void> {
    const fd = this.fd;
    if (fd === undefined) return;
    this.fd = undefined;
    await this.detach();
    this.dropFromHolder();
    await this.filesystem.stop({ drain: false });
    closeSync(fd);
    if (this.place.atTarget) return;
    if ((await mountsAt(this.dir)).length > 0) await detachAll(this.dir);
    await rmdir(this.dir).catch(() => undefined);
    // The repository's directory of trees goes with its last tree.
    await rmdir(dirname(this.dir)).catch(() => undefined);
  }

  /** Takes the mount out of the namespace at once (lazily): a dead or busy one goes too. */
  private async detach(): Promise<void> {
    try {
      if (MOUNTS_AS_USER) await fusermountUnmount(this.dir);
      else fuseDevice().umount(this.dir, MNT_DETACH);
    } catch (err) {
      // Already gone (someone unmounted it); for a directory of ours, what is left is cleared after.
      this.log.debug({ err, dir: this.dir }, 'the FUSE mount was already detached');
    }
  }

  /**
   * Stops serving but leaves the mount to the holder for a successor: requests already taken are
   * answered first (so nothing is lost even on a kernel that cannot resend), new ones wait in the
   * kernel. Without a holder this is an unmount.
   */
  async handOver(drainMs: number): Promise<void> {
    const fd = this.fd;
    if (fd === undefined) return;
    if (!this.fuse.holder) return this.unmount();
    this.fd = undefined;
    await this.filesystem.stop({ drain: true, drainMs });
    closeSync(fd);
  }

  private async adopt(): Promise<boolean> {
    const holder = this.fuse.holder;
    if (!holder) return false;
    let held: ReturnType<FuseHolder['take']>;
    try {
      held = holder.take(this.dir);
    } catch (err) {
      this.log.warn({ err, dir: this.dir }, 'the FUSE holder could not be asked for this mount; mounting it anew');
      return false;
    }
    if (!held) return false;
    const live = (await mountsAt(this.dir)).some((m) => m.fsType === TREE_FS_TYPE);
    if (!live) {
      closeSync(held.fd);
      this.dropFromHolder();
      return false;
    }
    const negotiated = held.state.negotiated as Negotiated;
    this.negotiated_ = negotiated;
    this.filesystem.serve(held.fd, negotiated, this.fuse.threads, OWNER);
    this.fd = held.fd;
    this.adopted_ = true;
    // Requests the previous server had read but not answered come again (their ids with bit 63 set).
    const resend = has(negotiated.offered, Init.HAS_RESEND);
    if (resend) writeSync(held.fd, notification(Notify.RESEND));
    this.log.info({ dir: this.dir, resend }, 'took over a FUSE mount left by an earlier process');
    return true;
  }

  private leaveWithHolder(fd: number, source: string): void {
    try {
      this.fuse.holder?.hold(this.dir, fd, { version: 1, negotiated: this.negotiated_, source });
    } catch (err) {
      this.log.warn({ err, dir: this.dir }, 'the FUSE holder did not take this mount: it will not outlive this process');
    }
  }

  private dropFromHolder(): void {
    try {
      this.fuse.holder?.drop(this.dir);
    } catch (err) {
      this.log.warn({ err, dir: this.dir }, 'the FUSE holder could not be told to let this mount go');
    }
  }
}

/** A notification to the kernel: a reply header with unique id 0 and the code where the error goes. */
function notification(code: number): Buffer {
  const message = Buffer.alloc(OUT_HEADER);
  message.writeUInt32LE(OUT_HEADER, 0);
  message.writeInt32LE(code, 4);
  return message;
}

/** Root mounts with mount(2) itself; the connection's descriptor is ours from the start. */
function mountAsRoot(dir: string, source: string): number {
  const fd = openFuseDevice();
  try {
    fuseDevice().mount(source, dir, TREE_FS_TYPE, MS_NOSUID | MS_NODEV | MS_RDONLY, `fd=${fd},rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions`);
  } catch (err) {
    closeSync(fd);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EPERM') throw new FuseUnavailable(`cannot mount FUSE at ${dir}: not permitted (EPERM); as root this needs CAP_SYS_ADMIN`, { cause: err });
    throw new GitfsError('internal', `cannot mount FUSE at ${dir}: ${(err as Error).message}`, { cause: err });
  }
  return fd;
}

function openFuseDevice(): number {
  try {
    return openSync('/dev/fuse', constants.O_RDWR | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'is missing (load the fuse module, or give the container the device)'
        : code === 'EACCES' || code === 'EPERM' ? `cannot be opened: not permitted (${code})`
          : `cannot be opened (${code})`;
    throw new FuseUnavailable(`/dev/fuse ${why}`, { cause: err });
  }
}
