import { GitfsError } from '../errors/errors';
import { FUSE_MAJOR, FUSE_MAX_MINOR, FUSE_MIN_MINOR, Init, INIT_OUT, OUT_HEADER } from './protocol';

/** What one connection agreed on at INIT; a successor serving the same connection needs it, so it is plain data. */
export interface Negotiated {
  minor: number;
  /** The flags both sides use (ours that the kernel offered), flags | flags2 * 2^32. */
  flags: number;
  /** What the kernel offered, masked by `KernelProfile`: capabilities such as NO_OPEN_SUPPORT need no reply bit. */
  offered: number;
  maxReadahead: number;
  maxPages: number;
}

/**
 * A kernel as old as `minor` offering only `flags`: negotiating through one makes this kernel
 * behave, towards us, like an older one (tests; a node that must not use a feature).
 */
export interface KernelProfile {
  minor: number;
  flags: number;
}

const f = Init;
/** Linux 5.10 (protocol 7.32): what it offers of the flags this server looks at. */
export const LINUX_5_10: KernelProfile = {
  minor: 32,
  flags: f.ASYNC_READ + f.ATOMIC_O_TRUNC + f.BIG_WRITES + f.AUTO_INVAL_DATA + f.DO_READDIRPLUS + f.READDIRPLUS_AUTO + f.ASYNC_DIO + f.NO_OPEN_SUPPORT +
    f.PARALLEL_DIROPS + f.MAX_PAGES + f.CACHE_SYMLINKS + f.NO_OPENDIR_SUPPORT + f.EXPLICIT_INVAL_DATA,
};

/**
 * The flags we ask for: every request in parallel, READDIRPLUS always (a walk needs no lookup per
 * entry), up to 256 pages per request, symlinks and directory listings cached, and pages never
 * invalidated behind our back (content is immutable).
 */
const WANTED = f.ASYNC_READ + f.BIG_WRITES + f.DO_READDIRPLUS + f.PARALLEL_DIROPS + f.MAX_PAGES + f.CACHE_SYMLINKS + f.EXPLICIT_INVAL_DATA + f.INIT_EXT;
const MAX_PAGES = 256;
export const MAX_WRITE = 128 * 1024;

export function has(flags: number, flag: number): boolean {
  return Math.floor(flags / flag) % 2 === 1;
}

function and(a: number, b: number): number {
  const low = (a % 2 ** 32 & b % 2 ** 32) >>> 0;
  const high = (Math.floor(a / 2 ** 32) & Math.floor(b / 2 ** 32)) >>> 0;
  return high * 2 ** 32 + low;
}

/** Reads the kernel's INIT (the request's body at `at`) and decides; throws for a kernel we cannot serve. */
export function negotiate(request: Buffer, at: number, profile?: KernelProfile): Negotiated {
  const major = request.readUInt32LE(at);
  let minor = request.readUInt32LE(at + 4);
  if (major !== FUSE_MAJOR) throw new GitfsError('internal', `the kernel speaks FUSE protocol ${major}.${minor}; gitfs-csi speaks ${FUSE_MAJOR}.x`);
  const maxReadahead = request.readUInt32LE(at + 8);
  let offered = request.readUInt32LE(at + 12);
  if (has(offered, f.INIT_EXT) && request.length >= at + 20) offered += request.readUInt32LE(at + 16) * 2 ** 32;
  if (profile) {
    minor = Math.min(minor, profile.minor);
    offered = and(offered, profile.flags);
  }
  minor = Math.min(minor, FUSE_MAX_MINOR);
  if (minor < FUSE_MIN_MINOR) throw new GitfsError('internal', `the kernel speaks FUSE protocol 7.${minor}; gitfs-csi needs 7.${FUSE_MIN_MINOR} or newer (Linux 5.4)`);
  return { minor, flags: and(offered, WANTED), offered, maxReadahead, maxPages: has(offered, f.MAX_PAGES) ? MAX_PAGES : 32 };
}

/** The INIT reply's body (64 bytes) for what was negotiated, after the reply header in `out`. */
export function writeInitReply(out: Buffer, n: Negotiated): number {
  out.fill(0, OUT_HEADER, OUT_HEADER + INIT_OUT);
  const at = OUT_HEADER;
  out.writeUInt32LE(FUSE_MAJOR, at);
  out.writeUInt32LE(n.minor, at + 4);
  out.writeUInt32LE(n.maxReadahead, at + 8);
  out.writeUInt32LE(n.flags % 2 ** 32, at + 12);
  out.writeUInt16LE(64, at + 16); // max_background: readahead of many files at once
  out.writeUInt16LE(48, at + 18); // congestion_threshold
  out.writeUInt32LE(MAX_WRITE, at + 20);
  out.writeUInt32LE(1, at + 24); // time_gran: whole seconds are exact
  out.writeUInt16LE(n.maxPages, at + 28);
  out.writeUInt32LE(Math.floor(n.flags / 2 ** 32), at + 32);
  // request_timeout (at + 40) stays 0: a timeout aborts the whole connection, not one request.
  return OUT_HEADER + INIT_OUT;
}

/** Largest READ reply a connection asks for, header included. */
export function replyBufferBytes(n: Negotiated): number {
  return n.maxPages * 4096 + OUT_HEADER;
}
