/**
 * The tree of one commit held compactly in memory: parallel typed arrays indexed by entry
 * number (entry 0 is the root), names as plain strings, object ids packed in one buffer.
 * About 100 bytes per entry; shared by every mount of the commit.
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

export class TreeIndex {
  /** Sum of the sizes of all blobs (files and symlinks). */
  totalBytes = 0;
  private sizesKnown = false;

  constructor(
    readonly commit: string,
    readonly oidBytes: number,
    readonly names: string[],
    readonly parents: Int32Array,
    readonly kinds: Uint8Array,
    readonly oids: Buffer,
    readonly sizes: Float64Array,
    /** For each directory, its children (entry numbers, sorted by name) in `children`. */
    private readonly childStart: Int32Array,
    private readonly childCount: Int32Array,
    private readonly children: Int32Array,
  ) {}

  get count(): number {
    return this.names.length;
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

  isBlob(entry: number): boolean {
    const kind = this.kinds[entry];
    return kind === EntryKind.File || kind === EntryKind.Executable || kind === EntryKind.Symlink;
  }

  /** Entry number of a slash-separated path ("/" or "" is the root), or -1. */
  lookup(path: string): number {
    let entry = 0;
    let start = path.charCodeAt(0) === 47 ? 1 : 0;
    while (start < path.length) {
      let end = path.indexOf('/', start);
      if (end < 0) end = path.length;
      if (end > start) {
        entry = this.child(entry, path.slice(start, end));
        if (entry < 0) return -1;
      }
      start = end + 1;
    }
    return entry;
  }

  /** The child of `dir` named `name`, by binary search, or -1. */
  child(dir: number, name: string): number {
    if (this.kinds[dir] !== EntryKind.Directory) return -1;
    let lo = this.childStart[dir];
    let hi = lo + this.childCount[dir] - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const candidate = this.names[this.children[mid]];
      if (candidate === name) return this.children[mid];
      if (candidate < name) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  childrenOf(dir: number): Int32Array {
    if (this.kinds[dir] !== EntryKind.Directory) return new Int32Array(0);
    const start = this.childStart[dir];
    return this.children.subarray(start, start + this.childCount[dir]);
  }

  pathOf(entry: number): string {
    const parts: string[] = [];
    for (let e = entry; e > 0; e = this.parents[e]) parts.push(this.names[e]);
    return parts.reverse().join('/');
  }

  /** Blob entries whose size is still unknown, with their object ids (deduplicated). */
  unknownSizeOids(): string[] {
    const oids = new Set<string>();
    for (let e = 0; e < this.count; e++) if (this.isBlob(e) && this.sizes[e] === UNKNOWN_SIZE) oids.add(this.oid(e));
    return [...oids];
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
