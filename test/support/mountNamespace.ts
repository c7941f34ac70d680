import { ChildProcess, spawn } from 'node:child_process';

import { setTimeout as sleep } from 'node:timers/promises';
import { MountEntry, readMountTable } from '../../src/mount/mountTable';

/** How /dev/fuse looks inside the namespace. */
export type DevFuse = 'open-to-users' | 'missing' | 'not-permitted';

/**
 * A private mount namespace held open by a sleeping process, whose /dev/fuse is replaced, so that
 * a test changes no device of the machine's: `open-to-users` is a 0666 node (as fuse3's udev rule
 * makes it; fusermount3 opens it with the user's own uid), `missing` a /dev without it,
 * `not-permitted` a node on a nodev file system (even root gets EACCES). The scratch file systems are
 * detached once /dev/fuse is bound, leaving no mount under `scratch`. Processes join it with `enter`.
 */
export class MountNamespace {
  private constructor(private readonly holder: ChildProcess) {}

  static async create(devFuse: DevFuse, scratch: string): Promise<MountNamespace> {
    const setup = {
      'open-to-users': `mkdir -p ${scratch}/dev && mount -t tmpfs none ${scratch}/dev && mknod -m 666 ${scratch}/dev/fuse c 10 229 && mount --bind ${scratch}/dev/fuse /dev/fuse && umount -l ${scratch}/dev`,
      missing:
        `mkdir -p ${scratch}/host && mount --bind /dev ${scratch}/host && mount -t tmpfs -o mode=755 none /dev && ` +
        `for n in null zero full random urandom; do touch /dev/$n && mount --bind ${scratch}/host/$n /dev/$n; done && umount -l ${scratch}/host`,
      'not-permitted': `mkdir -p ${scratch}/nodev && mount -t tmpfs -o nodev none ${scratch}/nodev && mknod -m 666 ${scratch}/nodev/fuse c 10 229 && mount --bind ${scratch}/nodev/fuse /dev/fuse && umount -l ${scratch}/nodev`,
    }[devFuse];
    const holder = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${setup} && echo ready && exec sleep infinity`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    holder.stdout!.on('data', (c) => (out += c));
    for (let i = 0; i < 500 && !out.includes('ready'); i++) {
      if (holder.exitCode !== null) throw new Error(`the mount namespace could not be set up (exit ${holder.exitCode})`);
      await sleep(10);
    }
    return new MountNamespace(holder);
  }

  /** A command prefix that runs in this namespace. */
  get enter(): string[] {
    return ['nsenter', '-t', String(this.holder.pid), '-m', '--'];
  }

  /** The namespace's mount table. */
  mounts(): Promise<MountEntry[]> {
    return readMountTable(`/proc/${this.holder.pid}/mountinfo`);
  }

  async close(): Promise<void> {
    this.holder.kill('SIGKILL');
    await new Promise((r) => (this.holder.exitCode !== null || this.holder.signalCode !== null ? r(undefined) : this.holder.once('close', r)));
  }
}

