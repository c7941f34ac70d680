import { join } from 'node:path';
import { GitfsError } from '../errors/errors';

/** The native addon (native/fuseDevice.c): the system calls Node cannot make. Errors carry the errno name as `code`. */
export interface FuseDevice {
  mount(source: string, target: string, fsType: string, flags: number, data: string): void;
  umount(target: string, flags: number): void;
  // On a thread of libuv's pool (a mount may need FUSE requests the main thread answers); rejections carry the errno name as `code`.
  mountAsync(source: string, target: string, fsType: string, flags: number, data: string): Promise<void>;
  /** Allocates a file's first `bytes` on its file system (ENOSPC when it cannot). */
  fallocateAsync(path: string, bytes: number): Promise<void>;
  /** Binds `image` to a free, auto-clearing loop device (with direct I/O where possible) and mounts it at `target`: the device's path. */
  mountLoopAsync(image: string, target: string, fsType: string, flags: number, data: string, directIo: boolean): Promise<string>;
  socketPair(): [number, number];
  listenUnix(path: string): number;
  /** The next connection, or -1 when none came within `timeoutMs` (0: no limit). */
  acceptUnix(fd: number, timeoutMs: number): number;
  connectUnix(path: string, timeoutMs: number): number;
  sendFds(socket: number, data: Buffer, fds: number[]): void;
  /** One message; empty `data` at end of stream. Received descriptors are close-on-exec. */
  receiveFds(socket: number, maxBytes: number): { data: Buffer; fds: number[]; truncated: number };
  setNonBlocking(fd: number): void;
  epollCreate(): number;
  epollAdd(epoll: number, fd: number, exclusive: boolean): void;
  epollRemove(epoll: number, fd: number): void;
  eventFd(): number;
  /** Waits on `epoll` and reads one request into `buffer`: bytes read or -errno; `which[0]` is the descriptor (-1 on timeout). */
  waitRequest(epoll: number, buffer: Buffer, timeoutMs: number, which: Int32Array): number;
  backingOpen(fuseFd: number, fileFd: number): number;
  backingClose(fuseFd: number, id: number): void;
  /** malloc_trim(0): the C heap's free memory back to the system. */
  trimMemory(): void;
}

export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_REMOUNT = 32;
export const MS_BIND = 4096;
export const MNT_DETACH = 2;

let loaded: FuseDevice | undefined;

export function fuseDevice(): FuseDevice {
  if (loaded) return loaded;
  const path = join(__dirname, '../../native/fuseDevice.node');
  try {
    loaded = require(path) as FuseDevice;
  } catch (err) {
    throw new GitfsError('internal', `the native addon ${path} is missing or cannot load (build it with npm run build): ${(err as Error).message}`, { cause: err });
  }
  return loaded;
}
