import { createHash } from 'node:crypto';
import { GitfsError } from '../errors/errors';
import { EntryKind, TreeIndex } from '../tree/treeIndex';

/** The index entry's mode for each kind of tree entry (directories have no entry). */
const MODES: Partial<Record<EntryKind, number>> = {
  [EntryKind.File]: 0o100644,
  [EntryKind.Executable]: 0o100755,
  [EntryKind.Symlink]: 0o120000,
  [EntryKind.Gitlink]: 0o160000,
};
const SLASH = 0x2f;
const NAME_LENGTH_MASK = 0xfff;

/**
 * A git index (version 2, the format of Documentation/gitformat-index.txt) of a commit's whole
 * tree, as a checkout of it served by gitfs-csi looks: every entry's mtime is `mtimeSeconds` (what
 * the mount shows for every file) and its size the blob's, and the stat fields git checks only
 * without `core.checkStat=minimal` (ctime, dev, inode, uid, gid) are 0. With that setting, and an
 * index file whose own mtime is later than `mtimeSeconds` (else git takes every entry as racily
 * clean and reads the files), `git status` finds the tree clean from metadata alone.
 * Every blob's size must be known.
 */
export function gitIndexFileOf(index: TreeIndex, mtimeSeconds: number): Buffer {
  if (!index.allSizesKnown) throw new GitfsError('internal', `the sizes of commit ${index.commit}'s blobs are not all known yet`);
  const oidBytes = index.oidBytes;
  const parts: Buffer[] = [];
  let count = 0;
  const visit = (dir: number, prefix: Buffer) => {
    for (const entry of gitOrderedChildren(index, dir)) {
      const name = index.names.subarray(index.nameStart(entry), index.nameEnd(entry));
      const path = prefix.length === 0 ? Buffer.from(name) : Buffer.concat([prefix, Buffer.of(SLASH), name]);
      const kind = index.kind(entry);
      if (kind === EntryKind.Directory) {
        visit(entry, path);
        continue;
      }
      parts.push(indexEntry(path, MODES[kind]!, Buffer.from(index.oid(entry), 'hex'), kind === EntryKind.Gitlink ? 0 : index.size(entry), mtimeSeconds, oidBytes));
      count++;
    }
  };
  visit(0, Buffer.alloc(0));
  const header = Buffer.alloc(12);
  header.write('DIRC', 0, 'latin1');
  header.writeUInt32BE(2, 4);
  header.writeUInt32BE(count, 8);
  const body = Buffer.concat([header, ...parts]);
  const checksum = createHash(oidBytes === 32 ? 'sha256' : 'sha1').update(body).digest();
  return Buffer.concat([body, checksum]);
}

/**
 * The length of `gitIndexFileOf(index, …)` without building it, and before any blob's size is
 * known: every entry's length follows from its path's alone. A `stat` of `.git/index` needs no more.
 */
export function gitIndexFileSize(index: TreeIndex): number {
  let size = 12 + index.oidBytes;
  // Over the columns themselves: this runs once per mount, often before its code is optimized.
  // Entries are numbered breadth first: a directory's path length is known before its children's.
  const { parents, kinds, nameEnds } = index.columns;
  const pathLengths = new Int32Array(index.count);
  for (let entry = 1; entry < index.count; entry++) {
    const parent = parents[entry];
    const pathLength = (parent === 0 ? 0 : pathLengths[parent] + 1) + nameEnds[entry] - nameEnds[entry - 1];
    pathLengths[entry] = pathLength;
    if (kinds[entry] !== EntryKind.Directory) size += entryLength(pathLength, index.oidBytes);
  }
  return size;
}

/**
 * A directory's children in git's order, which is the index's path order: names compared as bytes,
 * a directory's as if it ended in "/" (the tree index keeps plain byte order).
 */
function gitOrderedChildren(index: TreeIndex, dir: number): number[] {
  const first = index.firstChildOf(dir);
  const children = Array.from({ length: index.childCountOf(dir) }, (_, i) => first + i);
  const key = (entry: number) => {
    const name = index.names.subarray(index.nameStart(entry), index.nameEnd(entry));
    return index.kind(entry) === EntryKind.Directory ? Buffer.concat([name, Buffer.of(SLASH)]) : name;
  };
  const keys = new Map(children.map((entry) => [entry, key(entry)]));
  return children.sort((a, b) => Buffer.compare(keys.get(a)!, keys.get(b)!));
}

/** One entry: 40 bytes of stat fields, the object id, 16 bits of flags, the path, NUL padding to 8 bytes. */
function indexEntry(path: Buffer, mode: number, oid: Buffer, size: number, mtimeSeconds: number, oidBytes: number): Buffer {
  const entry = Buffer.alloc(entryLength(path.length, oidBytes));
  entry.writeUInt32BE(mtimeSeconds >>> 0, 8);
  entry.writeUInt32BE(mode, 24);
  entry.writeUInt32BE(size >>> 0, 36);
  oid.copy(entry, 40);
  entry.writeUInt16BE(Math.min(path.length, NAME_LENGTH_MASK), 40 + oidBytes);
  path.copy(entry, fixedLength(oidBytes));
  return entry;
}

/** An entry's length: its fixed fields and path, padded with NULs (at least one) to 8 bytes. */
function entryLength(pathLength: number, oidBytes: number): number {
  return (fixedLength(oidBytes) + pathLength + 8) & ~7;
}

/** Where an entry's path starts: after the stat fields, the object id and the flags. */
function fixedLength(oidBytes: number): number {
  return 40 + oidBytes + 2;
}
