// The subset of fuse-native's API that gitfs-csi uses (the package ships no types).
declare module 'fuse-native' {
  type Callback<T = void> = T extends void ? (errno: number) => void : (errno: number, value?: T) => void;

  export interface Stat {
    mode: number;
    uid: number;
    gid: number;
    size: number;
    nlink?: number;
    ino?: number;
    blksize?: number;
    blocks?: number;
    atime: Date | number;
    mtime: Date | number;
    ctime: Date | number;
  }

  export interface Statfs {
    bsize: number;
    frsize: number;
    blocks: number;
    bfree: number;
    bavail: number;
    files: number;
    ffree: number;
    favail: number;
    fsid: number;
    flag: number;
    namemax: number;
  }

  export interface Operations {
    init?(cb: (errno: number) => void): void;
    getattr?(path: string, cb: (errno: number, stat?: Stat) => void): void;
    /** `stats`, one per name, give each entry's type (d_type); libfuse 2 reads nothing but their mode. */
    readdir?(path: string, cb: (errno: number, names?: string[], stats?: Array<Pick<Stat, 'mode'>>) => void): void;
    open?(path: string, flags: number, cb: (errno: number, fd?: number) => void): void;
    read?(path: string, fd: number, buffer: Buffer, length: number, position: number, cb: (bytesOrErrno: number) => void): void;
    release?(path: string, fd: number, cb: (errno: number) => void): void;
    readlink?(path: string, cb: (errno: number, target?: string) => void): void;
    statfs?(path: string, cb: (errno: number, statfs?: Statfs) => void): void;
    [operation: string]: unknown;
  }

  export interface FuseOptions {
    timeout?: number | false;
    force?: boolean;
    mkdir?: boolean;
    allowOther?: boolean;
    kernelCache?: boolean;
    autoUnmount?: boolean;
    defaultPermissions?: boolean;
    entryTimeout?: number;
    attrTimeout?: number;
    fsname?: string;
    subtype?: string;
    maxRead?: number;
    debug?: boolean;
  }

  class Fuse {
    constructor(mountpoint: string, ops: Operations, opts?: FuseOptions);
    readonly mnt: string;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    _fuseOptions(): string;
    static unmount(mountpoint: string, cb: (err: Error | null) => void): void;
    static readonly EPERM: number;
    static readonly ENOENT: number;
    static readonly EIO: number;
    static readonly EBADF: number;
    static readonly EACCES: number;
    static readonly EISDIR: number;
    static readonly ENOTDIR: number;
    static readonly EINVAL: number;
    static readonly EROFS: number;
    static readonly ENOSYS: number;
    static readonly ETIMEDOUT: number;
  }

  export default Fuse;
}
