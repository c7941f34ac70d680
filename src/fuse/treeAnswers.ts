import { SegmentReader } from '../cache/segmentReader';
import { EntryKind, TreeIndex, UNKNOWN_SIZE } from '../tree/treeIndex';
import { Errno } from './errno';
import { has, Negotiated } from './initNegotiation';
import { ATTR_OUT, DIRENT_HEADER, ENTRY_OUT, Fopen, IN_HEADER, Init, Op, OPEN_OUT, OUT_HEADER, ROOT_ID, WRITE_OPS } from './protocol';

/**
 * What answering a request needs that is not in the request: the reply says so with a negative
 * number, and the main thread gets it (waits at the readiness gate, for sizes or for a blob),
 * then answers with this same code.
 */
export const enum Need {
  Tree = -1,
  Sizes = -2,
  Blob = -3,
  /** Requests only the main thread answers: INIT, STATFS, INTERRUPT, DESTROY. */
  MainThread = -4,
  /** A request too short or whose length disagrees with its header: answer EIO and log it. */
  Malformed = -5,
  /** An opcode this server does not know: answer ENOSYS and log it once. */
  Unknown = -6,
  /** A request about the volume's `.git`, which the main thread serves (GitDirectory). */
  GitDir = -7,
}

/** Nothing is written back (FORGET, BATCH_FORGET). */
export const NO_REPLY = 0;

/** One connection's facts, the same on every thread that serves it. */
export interface ConnectionFacts {
  negotiated: Negotiated;
  /** Owner shown for every entry: root for the node plugin, the user for a mount without root. */
  uid: number;
  gid: number;
  /** Requests received, by opcode (slot 0: opcodes past the table), counted by the serving threads. */
  requests: Int32Array;
  /** Whether the root holds a `.git` (its nodes are GIT_DIR_ID and on, answered by the main thread). */
  gitDir: boolean;
}

export const REQUEST_COUNT_SLOTS = 64;

/** A ready tree as it is served: the index (shared memory), lookup counts per entry, and its timestamps. */
export interface ServedTree {
  index: TreeIndex;
  /** The kernel's lookup count of each entry (LOOKUP and READDIRPLUS add, FORGET takes away). */
  lookups: Int32Array;
  /** The commit's committer date, in seconds: every entry's times. */
  commitSeconds: number;
}

/**
 * The node id of the root's `.git`, and of the rest of it after it: past 2^32, apart from the tree's
 * entries, so that `.git` itself is there before the tree is (a volume's view of it lies over it).
 */
export const GIT_DIR_ID = 2 ** 32;

const GIT_DIR_NAME = Buffer.from('.git');

/** Kernel caching for immutable content: a commit's entries, attributes and pages never change. */
export const CACHE_SECONDS = 3600;

const MODE_OF: Record<EntryKind, number> = {
  [EntryKind.Directory]: 0o40755,
  [EntryKind.Gitlink]: 0o40755,
  [EntryKind.File]: 0o100644,
  [EntryKind.Executable]: 0o100755,
  [EntryKind.Symlink]: 0o120777,
};
const KNOWN_UNSUPPORTED: ReadonlySet<number> = new Set([
  Op.GETXATTR, Op.LISTXATTR, Op.ACCESS, Op.FSYNC, Op.FSYNCDIR, Op.GETLK, Op.SETLK, Op.SETLKW, Op.BMAP, Op.IOCTL, Op.POLL,
  Op.LSEEK, Op.SETUPMAPPING, Op.REMOVEMAPPING, Op.SYNCFS, Op.STATX,
]);

/**
 * Answers one request from `tree` and the cache into `out`, synchronously: the reply's length,
 * NO_REPLY, or what is needed first. Serving threads call it for every request, the main thread
 * again once it has what was needed; nothing here waits or touches our own mount.
 */
export function answer(req: Buffer, length: number, conn: ConnectionFacts, tree: ServedTree | undefined, blobs: SegmentReader, out: Buffer): number {
  if (length < IN_HEADER || req.readUInt32LE(0) !== length) return Need.Malformed;
  const op = req.readUInt32LE(4);
  if (WRITE_OPS.has(op)) return error(out, req, Errno.EROFS);
  if (KNOWN_UNSUPPORTED.has(op)) return error(out, req, Errno.ENOSYS);
  switch (op) {
    case Op.INIT:
    case Op.STATFS:
    case Op.INTERRUPT:
    case Op.DESTROY:
      return Need.MainThread;
    case Op.RELEASE:
    case Op.RELEASEDIR:
      return header(out, req, OUT_HEADER, 0);
    case Op.FLUSH:
      // ENOSYS: the kernel stops sending FLUSH on this connection (every close() would otherwise
      // wait for a round trip to us, even with zero-message opens). Nothing is ever written here.
      return error(out, req, Errno.ENOSYS);
    case Op.NOTIFY_REPLY:
      return NO_REPLY;
    case Op.OPEN:
      if (length < IN_HEADER + 8) return Need.Malformed;
      // O_WRONLY, O_RDWR or O_TRUNC: never on a read-only tree.
      if (req.readUInt32LE(IN_HEADER) & (0o3 | 0o1000)) return error(out, req, Errno.EROFS);
      return open(out, req, conn, Init.NO_OPEN_SUPPORT, Fopen.KEEP_CACHE);
    case Op.OPENDIR:
      return open(out, req, conn, Init.NO_OPENDIR_SUPPORT, Fopen.KEEP_CACHE | Fopen.CACHE_DIR);
  }
  const known = op === Op.LOOKUP || op === Op.GETATTR || op === Op.READDIR || op === Op.READDIRPLUS || op === Op.READ || op === Op.READLINK || op === Op.FORGET || op === Op.BATCH_FORGET;
  if (!known) return Need.Unknown;
  if (conn.gitDir && (isGitDirNode(req) || isRootLookupOfGitDir(req, length))) return op === Op.FORGET ? NO_REPLY : Need.GitDir;
  if (!tree) {
    if (op === Op.GETATTR && nodeIdOf(req) === ROOT_ID) return rootBeforeReady(out, req, conn);
    if (op === Op.FORGET || op === Op.BATCH_FORGET) return NO_REPLY; // nothing was looked up yet
    return Need.Tree;
  }
  if (op === Op.BATCH_FORGET) return batchForget(req, length, tree);
  const entry = entryOf(req, tree.index);
  if (entry < 0) return op === Op.FORGET ? NO_REPLY : error(out, req, Errno.ENOENT);
  switch (op) {
    case Op.FORGET:
      if (length < IN_HEADER + 8) return Need.Malformed;
      forget(tree, entry, readU64(req, IN_HEADER));
      return NO_REPLY;
    case Op.LOOKUP:
      return lookup(out, req, length, conn, tree, entry);
    case Op.GETATTR: {
      if (!sizeKnown(tree.index, entry)) return Need.Sizes;
      const words = wordsOf(out);
      putU64(words, OUT_HEADER, CACHE_SECONDS);
      putU64(words, OUT_HEADER + 8, 0); // attr_valid_nsec, padding
      writeAttr(words, OUT_HEADER + 16, conn, tree, entry);
      return header(out, req, OUT_HEADER + ATTR_OUT, 0);
    }
    case Op.READDIR:
    case Op.READDIRPLUS:
      if (length < IN_HEADER + 24) return Need.Malformed;
      // A walk's listing waits for its files' sizes (one request for them all), not a lookup each.
      if (op === Op.READDIRPLUS && !listedSizesKnown(req, tree.index, entry)) return Need.Sizes;
      return readdir(out, req, conn, tree, entry, op === Op.READDIRPLUS);
    case Op.READLINK:
      if (tree.index.kind(entry) !== EntryKind.Symlink) return error(out, req, Errno.EINVAL);
      return readBlob(out, req, tree, entry, 0, out.length - OUT_HEADER, blobs);
    default: {
      if (length < IN_HEADER + 24) return Need.Malformed;
      if (!tree.index.isBlob(entry)) return error(out, req, Errno.EISDIR);
      const size = Math.min(req.readUInt32LE(IN_HEADER + 16), out.length - OUT_HEADER);
      return readBlob(out, req, tree, entry, readU64(req, IN_HEADER + 8), size, blobs);
    }
  }
}

/** A reply of `errno` alone. */
export function error(out: Buffer, req: Buffer, errno: number): number {
  return header(out, req, OUT_HEADER, errno);
}

/** Writes the reply header (its unique id copied as received, bit 63 included) and returns `length`. */
export function header(out: Buffer, req: Buffer, length: number, errno: number): number {
  out.writeUInt32LE(length, 0);
  out.writeInt32LE(-errno, 4);
  out.writeUInt32LE(req.readUInt32LE(8), 8);
  out.writeUInt32LE(req.readUInt32LE(12), 12);
  return length;
}

/** Whether the request is about a node of `.git` (GIT_DIR_ID and on). */
function isGitDirNode(req: Buffer): boolean {
  return req.readUInt32LE(20) === GIT_DIR_ID / 2 ** 32;
}

/** Whether the request is the root's lookup of `.git`. */
export function isRootLookupOfGitDir(req: Buffer, length: number): boolean {
  const nameEnd = IN_HEADER + GIT_DIR_NAME.length;
  return req.readUInt32LE(4) === Op.LOOKUP && nodeIdOf(req) === ROOT_ID && length > nameEnd && req[nameEnd] === 0 && req.compare(GIT_DIR_NAME, 0, GIT_DIR_NAME.length, IN_HEADER, nameEnd) === 0;
}

export function nodeIdOf(req: Buffer): number {
  return req.readUInt32LE(20) === 0 ? req.readUInt32LE(16) : -1;
}

/** The entry a request's node id names (inode numbers are entry numbers + 1), or -1. */
export function entryOf(req: Buffer, index: TreeIndex): number {
  const id = nodeIdOf(req);
  return id >= ROOT_ID && id <= index.count ? id - 1 : -1;
}

function open(out: Buffer, req: Buffer, conn: ConnectionFacts, zeroMessageFlag: number, openFlags: number): number {
  // ENOSYS tells a kernel that supports it to open without asking us (and to send no RELEASE) from now on.
  if (has(conn.negotiated.offered, zeroMessageFlag)) return error(out, req, Errno.ENOSYS);
  out.fill(0, OUT_HEADER, OUT_HEADER + OPEN_OUT);
  out.writeUInt32LE(openFlags, OUT_HEADER + 8);
  return header(out, req, OUT_HEADER + OPEN_OUT, 0);
}

function lookup(out: Buffer, req: Buffer, length: number, conn: ConnectionFacts, tree: ServedTree, parent: number): number {
  const index = tree.index;
  if (!index.isDirectory(parent)) return error(out, req, index.kind(parent) === EntryKind.Gitlink ? Errno.ENOENT : Errno.ENOTDIR);
  const child = childNamed(req, length, index, parent);
  if (child === Need.Malformed) return child;
  if (child >= 0 && !sizeKnown(index, child)) return Need.Sizes;
  writeEntry(out, OUT_HEADER, conn, tree, child);
  return header(out, req, OUT_HEADER + ENTRY_OUT, 0);
}

/** The entry a LOOKUP names in directory `parent` (-1 when there is none), or Need.Malformed. */
function childNamed(req: Buffer, length: number, index: TreeIndex, parent: number): number {
  let end = IN_HEADER;
  while (end < length && req[end] !== 0) end++;
  if (end === length) return Need.Malformed;
  return index.child(parent, req, IN_HEADER, end);
}

/** The children a READDIR(PLUS) reply may hold, entries [start, end): from its offset, as many as its size could fit. */
export function listedChildren(req: Buffer, index: TreeIndex, dir: number): { start: number; end: number } {
  if (!index.isDirectory(dir)) return { start: 0, end: 0 };
  const skipped = Math.max(0, readU64(req, IN_HEADER + 8) - 2);
  const fitting = Math.floor(req.readUInt32LE(IN_HEADER + 16) / (ENTRY_OUT + align8(DIRENT_HEADER + 1)));
  const first = index.firstChildOf(dir);
  return { start: first + skipped, end: first + Math.min(index.childCountOf(dir), skipped + fitting) };
}

function listedSizesKnown(req: Buffer, index: TreeIndex, dir: number): boolean {
  const { start, end } = listedChildren(req, index, dir);
  for (let child = start; child < end; child++) if (!sizeKnown(index, child)) return false;
  return true;
}

/** A READDIRPLUS answered as the index stands: a child whose size could not be learnt goes without attributes. */
export function listingAsItStands(out: Buffer, req: Buffer, conn: ConnectionFacts, tree: ServedTree): number {
  return readdir(out, req, conn, tree, entryOf(req, tree.index), true);
}

/** The entry whose size a request answered with Need.Sizes waits for: a LOOKUP's child, else the request's node. */
export function sizedEntryOf(req: Buffer, index: TreeIndex): number {
  const entry = entryOf(req, index);
  return req.readUInt32LE(4) === Op.LOOKUP ? childNamed(req, req.length, index, entry) : entry;
}

/**
 * An entry reply; for -1 a negative one (node id 0), which the kernel caches like a positive one,
 * so a missing name is asked about once.
 */
function writeEntry(out: Buffer, at: number, conn: ConnectionFacts, tree: ServedTree, entry: number): void {
  if (entry < 0) {
    out.fill(0, at, at + ENTRY_OUT);
    writeU64(out, at + 16, CACHE_SECONDS);
    return;
  }
  const words = wordsOf(out);
  writeEntryHeader(words, at, entry + 1);
  writeAttr(words, at + 40, conn, tree, entry);
  Atomics.add(tree.lookups, entry, 1);
}

function writeAttr(words: Uint32Array, at: number, conn: ConnectionFacts, tree: ServedTree, entry: number): void {
  const index = tree.index;
  const kind = index.kind(entry);
  const directory = kind === EntryKind.Directory || kind === EntryKind.Gitlink;
  writeAttrFields(words, at, conn, entry + 1, MODE_OF[kind], directory ? 4096 : index.size(entry), tree.commitSeconds);
}

/*
 * A listing writes an entry and its attributes for every child: they go in as 32-bit words of the
 * host's byte order (the protocol's), every field including the zeros, which is several times
 * cheaper than Buffer's checked writes and a fill per record.
 */
let wordsBuffer: Buffer | undefined;
let words32: Uint32Array = new Uint32Array(0);

/** The reply buffer as words (each thread reuses one buffer: the view is made once). */
function wordsOf(out: Buffer): Uint32Array {
  if (out !== wordsBuffer) {
    if (out.byteOffset % 4 !== 0) throw new Error('a reply buffer must start on a 4-byte boundary');
    words32 = new Uint32Array(out.buffer, out.byteOffset, out.length >>> 2);
    wordsBuffer = out;
  }
  return words32;
}

/** A name byte by byte: most are short, and Buffer's copy costs a call out of JavaScript. */
function copyName(from: Uint8Array, start: number, length: number, out: Buffer, at: number): void {
  if (length > 64) return void out.set(from.subarray(start, start + length), at);
  for (let i = 0; i < length; i++) out[at + i] = from[start + i];
}

/** Byte offset `at` (a multiple of 4) as 64 bits: `value` below 2^53. */
function putU64(words: Uint32Array, at: number, value: number): void {
  words[at >>> 2] = value % 2 ** 32;
  words[(at >>> 2) + 1] = Math.floor(value / 2 ** 32);
}

/** A positive entry's node id, generation 0 and both timeouts in whole seconds. */
function writeEntryHeader(words: Uint32Array, at: number, node: number): void {
  putU64(words, at, node);
  putU64(words, at + 8, 0);
  putU64(words, at + 16, CACHE_SECONDS);
  putU64(words, at + 24, CACHE_SECONDS);
  putU64(words, at + 32, 0);
}

function writeAttrFields(words: Uint32Array, at: number, conn: ConnectionFacts, node: number, mode: number, size: number, seconds: number): void {
  putU64(words, at, node);
  putU64(words, at + 8, size);
  putU64(words, at + 16, Math.ceil(size / 512));
  putU64(words, at + 24, seconds);
  putU64(words, at + 32, seconds);
  putU64(words, at + 40, seconds);
  const w = at >>> 2;
  words[w + 12] = 0; // atimensec
  words[w + 13] = 0; // mtimensec
  words[w + 14] = 0; // ctimensec
  words[w + 15] = mode;
  words[w + 16] = mode & 0o40000 ? 2 : 1;
  words[w + 17] = conn.uid;
  words[w + 18] = conn.gid;
  words[w + 19] = 0; // rdev
  words[w + 20] = 4096; // blksize
  words[w + 21] = 0; // flags
}

/** What a reply shows of one node: the tree's entries, and the files and directories of `.git`. */
export interface NodeAttr {
  node: number;
  mode: number;
  size: number;
  /** atime, mtime and ctime. */
  seconds: number;
}

export function writeNodeAttr(out: Buffer, at: number, conn: ConnectionFacts, attr: NodeAttr): void {
  writeAttrFields(wordsOf(out), at, conn, attr.node, attr.mode, attr.size, attr.seconds);
}

/** An entry reply for a node that keeps no lookup count (cached as long as the tree's entries). */
export function writeNodeEntry(out: Buffer, at: number, conn: ConnectionFacts, attr: NodeAttr): void {
  const words = wordsOf(out);
  writeEntryHeader(words, at, attr.node);
  writeAttrFields(words, at + 40, conn, attr.node, attr.mode, attr.size, attr.seconds);
}

/** The attributes of the root's `.git` directory itself (its times the commit's, or 0 before the tree is ready). */
export function gitDirAttr(seconds: number): NodeAttr {
  return { node: GIT_DIR_ID, mode: 0o40755, size: 4096, seconds };
}

/**
 * The root's `.git` itself before the tree is ready (a volume's view of it is laid over it then): a
 * lookup of it from the root, or its attributes; not cached, so the real ones show once ready.
 * Undefined for any other request.
 */
export function gitDirBeforeReady(out: Buffer, req: Buffer, length: number, conn: ConnectionFacts): number | undefined {
  const lookup = isRootLookupOfGitDir(req, length);
  if (!lookup && !(req.readUInt32LE(4) === Op.GETATTR && readU64(req, 16) === GIT_DIR_ID)) return undefined;
  const at = OUT_HEADER + (lookup ? 40 : 16);
  out.fill(0, OUT_HEADER, at);
  if (lookup) writeU64(out, OUT_HEADER, GIT_DIR_ID);
  writeNodeAttr(out, at, conn, gitDirAttr(0));
  return header(out, req, lookup ? OUT_HEADER + ENTRY_OUT : OUT_HEADER + ATTR_OUT, 0);
}

/** The root before the tree is ready: an empty directory, not cached, so the real one shows once ready. */
function rootBeforeReady(out: Buffer, req: Buffer, conn: ConnectionFacts): number {
  out.fill(0, OUT_HEADER, OUT_HEADER + 16);
  writeNodeAttr(out, OUT_HEADER + 16, conn, { node: ROOT_ID, mode: 0o40755, size: 4096, seconds: 0 });
  return header(out, req, OUT_HEADER + ATTR_OUT, 0);
}

const DOT = Buffer.from('..');
const DT_DIR = 4;
const TYPE_OF: Record<EntryKind, number> = {
  [EntryKind.Directory]: DT_DIR,
  [EntryKind.Gitlink]: DT_DIR,
  [EntryKind.File]: 8,
  [EntryKind.Executable]: 8,
  [EntryKind.Symlink]: 10,
};

/**
 * A directory's listing from `offset` on, as much as fits: position 0 is ".", 1 is "..", then
 * the children in name order, and each entry's offset is the position after it, so seekdir and
 * telldir land where they should. READDIRPLUS also gives each child's attributes, except for a
 * blob whose size is not known yet (node id 0: the kernel looks it up when it is wanted).
 */
function readdir(out: Buffer, req: Buffer, conn: ConnectionFacts, tree: ServedTree, dir: number, plus: boolean): number {
  const index = tree.index;
  const kind = index.kind(dir);
  if (kind !== EntryKind.Directory && kind !== EntryKind.Gitlink) return error(out, req, Errno.ENOTDIR);
  const offset = readU64(req, IN_HEADER + 8);
  const limit = Math.min(req.readUInt32LE(IN_HEADER + 16), out.length - OUT_HEADER);
  const children = index.childCountOf(dir);
  const first = index.firstChildOf(dir);
  const names = index.names;
  const words = wordsOf(out);
  // The root's `.git` comes after its children.
  const end = children + 2 + (dir === 0 && conn.gitDir ? 1 : 0);
  let at = OUT_HEADER;
  for (let position = offset; position < end; position++) {
    const child = position >= 2 && position < children + 2 ? first + position - 2 : -1;
    const dotGit = position === children + 2;
    const nameStart = child >= 0 ? index.nameStart(child) : 0;
    const nameLength = child >= 0 ? index.nameEnd(child) - nameStart : dotGit ? GIT_DIR_NAME.length : position === 0 ? 1 : 2;
    const direntAt = plus ? at + ENTRY_OUT : at;
    const next = direntAt + align8(DIRENT_HEADER + nameLength);
    if (next - OUT_HEADER > limit) break;
    const target = child >= 0 ? child + 1 : dotGit ? GIT_DIR_ID : (position === 0 ? dir : index.parents[dir]) + 1;
    if (plus) {
      if (child >= 0 && sizeKnown(index, child)) writeEntry(out, at, conn, tree, child);
      else if (dotGit) writeNodeEntry(out, at, conn, gitDirAttr(tree.commitSeconds));
      else out.fill(0, at, at + ENTRY_OUT);
    }
    putU64(words, direntAt, target);
    putU64(words, direntAt + 8, position + 1);
    words[(direntAt >>> 2) + 4] = nameLength;
    words[(direntAt >>> 2) + 5] = child >= 0 ? TYPE_OF[index.kind(child)] : DT_DIR;
    const name = child >= 0 ? names : dotGit ? GIT_DIR_NAME : DOT;
    copyName(name, nameStart, nameLength, out, direntAt + DIRENT_HEADER);
    for (let pad = direntAt + DIRENT_HEADER + nameLength; pad < next; pad++) out[pad] = 0;
    at = next;
  }
  return header(out, req, at, 0);
}

/** Up to `size` bytes of a cached blob from `position`; a blob not verified in the cache is the main thread's to fetch. */
function readBlob(out: Buffer, req: Buffer, tree: ServedTree, entry: number, position: number, size: number, blobs: SegmentReader): number {
  const index = tree.index;
  if (index.size(entry) === 0) return header(out, req, OUT_HEADER, 0);
  let read: number;
  try {
    read = blobs.readVerified(index.columns.oids, entry * index.oidBytes, position, size, out, OUT_HEADER);
  } catch {
    return error(out, req, Errno.EIO);
  }
  // Not verified here, or evicted since: the main thread's to fetch.
  return read < 0 ? Need.Blob : header(out, req, OUT_HEADER + read, 0);
}

function forget(tree: ServedTree, entry: number, count: number): void {
  // Never below zero: a successor process starts counting afresh while the kernel still holds older lookups.
  if (Atomics.sub(tree.lookups, entry, count) < count) Atomics.store(tree.lookups, entry, 0);
}

function batchForget(req: Buffer, length: number, tree: ServedTree): number {
  const count = req.readUInt32LE(IN_HEADER);
  if (length < IN_HEADER + 8 + count * 16) return Need.Malformed;
  for (let i = 0, at = IN_HEADER + 8; i < count; i++, at += 16) {
    const id = req.readUInt32LE(at + 4) === 0 ? req.readUInt32LE(at) : 0;
    if (id >= ROOT_ID && id <= tree.index.count) forget(tree, id - 1, readU64(req, at + 8));
  }
  return NO_REPLY;
}

function sizeKnown(index: TreeIndex, entry: number): boolean {
  return index.sizes[entry] !== UNKNOWN_SIZE;
}

export function align8(n: number): number {
  return (n + 7) & ~7;
}

export function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at + 4) * 2 ** 32 + buf.readUInt32LE(at);
}

export function writeU64(buf: Buffer, at: number, value: number): void {
  buf.writeUInt32LE(value % 2 ** 32, at);
  buf.writeUInt32LE(Math.floor(value / 2 ** 32), at + 4);
}
