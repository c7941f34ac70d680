/**
 * Facts of the kernel's FUSE protocol (include/uapi/linux/fuse.h, protocol 7.x): opcodes, flags,
 * and the byte offsets of the structures gitfs-csi reads and writes. Little-endian, as on every
 * architecture the node plugin runs on.
 */

export const FUSE_MAJOR = 7;
/** The newest minor whose structures this server knows; the connection speaks min(kernel's, this). */
export const FUSE_MAX_MINOR = 45;
/** Oldest minor served: 7.31 is Linux 5.4's (the oldest kernel a node of ours runs is 5.10, 7.32). */
export const FUSE_MIN_MINOR = 31;
export const ROOT_ID = 1;

export const enum Op {
  LOOKUP = 1,
  FORGET = 2,
  GETATTR = 3,
  SETATTR = 4,
  READLINK = 5,
  SYMLINK = 6,
  MKNOD = 8,
  MKDIR = 9,
  UNLINK = 10,
  RMDIR = 11,
  RENAME = 12,
  LINK = 13,
  OPEN = 14,
  READ = 15,
  WRITE = 16,
  STATFS = 17,
  RELEASE = 18,
  FSYNC = 20,
  SETXATTR = 21,
  GETXATTR = 22,
  LISTXATTR = 23,
  REMOVEXATTR = 24,
  FLUSH = 25,
  INIT = 26,
  OPENDIR = 27,
  READDIR = 28,
  RELEASEDIR = 29,
  FSYNCDIR = 30,
  GETLK = 31,
  SETLK = 32,
  SETLKW = 33,
  ACCESS = 34,
  CREATE = 35,
  INTERRUPT = 36,
  BMAP = 37,
  DESTROY = 38,
  IOCTL = 39,
  POLL = 40,
  NOTIFY_REPLY = 41,
  BATCH_FORGET = 42,
  FALLOCATE = 43,
  READDIRPLUS = 44,
  RENAME2 = 45,
  LSEEK = 46,
  COPY_FILE_RANGE = 47,
  SETUPMAPPING = 48,
  REMOVEMAPPING = 49,
  SYNCFS = 50,
  TMPFILE = 51,
  STATX = 52,
  COPY_FILE_RANGE_64 = 53,
}

/** Opcode names, lower case, for metric labels (index: opcode). */
const OP_NAMES = [
  'unknown', 'lookup', 'forget', 'getattr', 'setattr', 'readlink', 'symlink', 'unknown', 'mknod', 'mkdir', 'unlink', 'rmdir', 'rename',
  'link', 'open', 'read', 'write', 'statfs', 'release', 'unknown', 'fsync', 'setxattr', 'getxattr', 'listxattr', 'removexattr', 'flush',
  'init', 'opendir', 'readdir', 'releasedir', 'fsyncdir', 'getlk', 'setlk', 'setlkw', 'access', 'create', 'interrupt', 'bmap', 'destroy',
  'ioctl', 'poll', 'notify_reply', 'batch_forget', 'fallocate', 'readdirplus', 'rename2', 'lseek', 'copy_file_range', 'setupmapping',
  'removemapping', 'syncfs', 'tmpfile', 'statx', 'copy_file_range_64',
];

export function opName(op: number): string {
  return OP_NAMES[op] ?? 'unknown';
}

/** Requests that would change the tree: a read-only mount answers each with EROFS. */
export const WRITE_OPS: ReadonlySet<number> = new Set([
  Op.SETATTR, Op.SYMLINK, Op.MKNOD, Op.MKDIR, Op.UNLINK, Op.RMDIR, Op.RENAME, Op.LINK, Op.WRITE, Op.SETXATTR,
  Op.REMOVEXATTR, Op.CREATE, Op.FALLOCATE, Op.RENAME2, Op.COPY_FILE_RANGE, Op.TMPFILE, Op.COPY_FILE_RANGE_64,
]);

/** INIT flags, as one number over both words (flags | flags2 << 32): exact up to bit 52. */
export const Init = {
  ASYNC_READ: 2 ** 0,
  ATOMIC_O_TRUNC: 2 ** 3,
  BIG_WRITES: 2 ** 5,
  AUTO_INVAL_DATA: 2 ** 12,
  DO_READDIRPLUS: 2 ** 13,
  READDIRPLUS_AUTO: 2 ** 14,
  ASYNC_DIO: 2 ** 15,
  NO_OPEN_SUPPORT: 2 ** 17,
  PARALLEL_DIROPS: 2 ** 18,
  MAX_PAGES: 2 ** 22,
  CACHE_SYMLINKS: 2 ** 23,
  NO_OPENDIR_SUPPORT: 2 ** 24,
  EXPLICIT_INVAL_DATA: 2 ** 25,
  INIT_EXT: 2 ** 30,
  PASSTHROUGH: 2 ** 37,
  HAS_RESEND: 2 ** 39,
  REQUEST_TIMEOUT: 2 ** 42,
} as const;

export const Notify = { RESEND: 7 } as const;

export const Fopen = { KEEP_CACHE: 1 << 1, CACHE_DIR: 1 << 3, PASSTHROUGH: 1 << 7 } as const;

/** Bit 63 of a unique id marks a request the kernel sent again after FUSE_NOTIFY_RESEND. */
export const RESENT_BIT_HIGH = 0x80000000;

export const IN_HEADER = 40; // len u32, opcode u32, unique u64, nodeid u64, uid, gid, pid u32, total_extlen u16, padding u16
export const OUT_HEADER = 16; // len u32, error i32, unique u64
export const ATTR_SIZE = 88;
export const ENTRY_OUT = 40 + ATTR_SIZE;
export const ATTR_OUT = 16 + ATTR_SIZE;
export const DIRENT_HEADER = 24; // ino u64, off u64, namelen u32, type u32
export const STATFS_OUT = 80;
export const INIT_OUT = 64;
/** Kernels before 7.23 take a 24-byte INIT reply. */
export const INIT_OUT_COMPAT_22 = 24;
export const OPEN_OUT = 16;

/** The kernel wants a read buffer of at least this many bytes, whatever max_write says. */
export const MIN_READ_BUFFER = 8192;
