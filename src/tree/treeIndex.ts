/**
 * The tree of one commit held compactly in shared memory: parallel typed arrays indexed by entry
 * number (entry 0 is the root; entries are numbered breadth first, each directory's children
 * consecutive and in byte order of their names), names as UTF-8 bytes, object ids packed in one
 * buffer. About 60 bytes per entry; shared by every mount of the commit and by the threads that
 * serve it, which open the same memory with `TreeIndex.fromShared`.
 */

export const enum EntryKind {
  Directory = 1,
  File = 2,
  Executable = 3,
  Symlink = 4,
  /** A submodule commit: shown as an empty directory. */
  Gitlink = 5,
}

export const UNKNOWN_SIZE = -1;

/** The columns of an index, each over a SharedArrayBuffer: what crosses to a serving thread. */
export interface TreeIndexColumns {
  commit: string;
  oidBytes: number;
  count: number;
  names: Uint8Array;
  /** Where each entry's name ends in `names` (entry e's starts where e-1's ends). */
  nameEnds: Int32Array;
  parents: Int32Array;
  kinds: Uint8Array;
  oids: Uint8Array;
  /** Written as sizes become known, read by every thread: UNKNOWN_SIZE until then. */
  sizes: Float64Array;
  firstChild: Int32Array;
  childCount: Int32Array;
}

const encoder = new TextEncoder();

export class TreeIndex {
  /** Sum of the sizes of all blobs (files and symlinks). */
  totalBytes = 0;
  private sizesKnown = false;
  readonly commit: string;
  readonly oidBytes: number;
  readonly count: number;
  readonly parents: Int32Array;
  readonly kinds: Uint8Array;
  readonly sizes: Float64Array;
  private readonly nameBytes: Buffer;
  private readonly nameEnds: Int32Array;
  private readonly oids: Buffer;
  private readonly firstChild: Int32Array;
  private readonly childCount: Int32Array;

  constructor(readonly columns: TreeIndexColumns) {
    ({ commit: this.commit, oidBytes: this.oidBytes, count: this.count, parents: this.parents, kinds: this.kinds, sizes: this.sizes } = columns);
    ({ nameEnds: this.nameEnds, firstChild: this.firstChild, childCount: this.childCount } = columns);
    this.nameBytes = Buffer.from(columns.names.buffer, columns.names.byteOffset, columns.names.byteLength);
    this.oids = Buffer.from(columns.oids.buffer, columns.oids.byteOffset, columns.oids.byteLength);
  }

  /** Empty columns for `count` entries with `nameBytes` bytes of names, in shared memory. */
  static allocate(commit: string, oidBytes: number, count: number, nameBytes: number): TreeIndexColumns {
    const shared = <T>(Type: { new (buffer: SharedArrayBuffer): T; BYTES_PER_ELEMENT: number }, length: number) => new Type(new SharedArrayBuffer(length * Type.BYTES_PER_ELEMENT));
    return {
      commit, oidBytes, count,
      names: shared(Uint8Array, nameBytes),
      nameEnds: shared(Int32Array, count),
      parents: shared(Int32Array, count),
      kinds: shared(Uint8Array, count),
      oids: shared(Uint8Array, count * oidBytes),
      sizes: shared(Float64Array, count),
      firstChild: shared(Int32Array, count),
      childCount: shared(Int32Array, count),
    };
  }

  get allSizesKnown(): boolean {
    return this.sizesKnown;
  }

  kind(entry: number): EntryKind {
    return this.kinds[entry] as EntryKind;
  }

  oid(entry: number): string {
    return this.oids.toString('hex', entry * this.oidBytes, (entry + 1) * this.oidBytes);
  }

  size(entry: number): number {
    return this.sizes[entry];
  }

  name(entry: number): string {
    return this.nameBytes.toString('utf8', this.nameStart(entry), this.nameEnds[entry]);
  }

  /** Where entry's name lies in `nameBytes`, for a thread that copies it into a reply. */
  nameStart(entry: number): number {
    return entry === 0 ? 0 : this.nameEnds[entry - 1];
  }

  nameEnd(entry: number): number {
    return this.nameEnds[entry];
  }

  get names(): Buffer {
    return this.nameBytes;
  }

  isBlob(entry: number): boolean {
    const kind = this.kinds[entry];
    return kind === EntryKind.File || kind === EntryKind.Executable || kind === EntryKind.Symlink;
  }

  isDirectory(entry: number): boolean {
    return this.kinds[entry] === EntryKind.Directory;
  }

  /** Entry number of a slash-separated path ("/" or "" is the root), or -1. */
  lookup(path: string): number {
    let entry = 0;
    for (const part of path.split('/')) {
      if (part === '') continue;
      const bytes = encoder.encode(part);
      entry = this.child(entry, bytes, 0, bytes.length);
      if (entry < 0) return -1;
    }
    return entry;
  }

  /** The child of `dir` named by the bytes `name[start, end)`, by binary search, or -1. */
  child(dir: number, name: Uint8Array, start: number, end: number): number {
    if (this.kinds[dir] !== EntryKind.Directory) return -1;
    let lo = this.firstChild[dir];
    let hi = lo + this.childCount[dir] - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const order = compareBytes(this.nameBytes, this.nameStart(mid), this.nameEnds[mid], name, start, end);
      if (order === 0) return mid;
      if (order < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** The first child of a directory; its children are the `childCountOf(dir)` entries from there. */
  firstChildOf(dir: number): number {
    return this.firstChild[dir];
  }

  childCountOf(dir: number): number {
    return this.kinds[dir] === EntryKind.Directory ? this.childCount[dir] : 0;
  }

  /** A directory's children, for callers on the main thread (serving threads walk the range). */
  *childrenOf(dir: number): Generator<number> {
    const first = this.firstChild[dir];
    for (let i = 0; i < this.childCountOf(dir); i++) yield first + i;
  }

  pathOf(entry: number): string {
    const parts: string[] = [];
    for (let e = entry; e > 0; e = this.parents[e]) parts.push(this.name(e));
    return parts.reverse().join('/');
  }

  /** Blob entries whose size is still unknown, with their object ids (deduplicated). */
  unknownSizeOids(): string[] {
    const oids = new Set<string>();
    for (let e = 0; e < this.count; e++) if (this.isBlob(e) && this.sizes[e] === UNKNOWN_SIZE) oids.add(this.oid(e));
    return [...oids];
  }

  /** One entry's size, learnt before the tree's (totals follow with applySizes). */
  setSize(entry: number, size: number): void {
    this.sizes[entry] = size;
  }

  /** Records sizes by object id; returns how many entries are still unknown. */
  applySizes(sizes: Map<string, number>): number {
    let unknown = 0;
    let total = 0;
    for (let e = 0; e < this.count; e++) {
      if (!this.isBlob(e)) continue;
      if (this.sizes[e] === UNKNOWN_SIZE) {
        const size = sizes.get(this.oid(e));
        if (size !== undefined) this.sizes[e] = size;
      }
      if (this.sizes[e] === UNKNOWN_SIZE) unknown++;
      else total += this.sizes[e];
    }
    this.totalBytes = total;
    this.sizesKnown = unknown === 0;
    return unknown;
  }
}

/** Byte order of `a[aStart, aEnd)` against `b[bStart, bEnd)`: negative, zero or positive, as memcmp. */
export function compareBytes(a: Uint8Array, aStart: number, aEnd: number, b: Uint8Array, bStart: number, bEnd: number): number {
  const length = Math.min(aEnd - aStart, bEnd - bStart);
  for (let i = 0; i < length; i++) {
    const d = a[aStart + i] - b[bStart + i];
    if (d !== 0) return d;
  }
  return aEnd - aStart - (bEnd - bStart);
}
