import { EntryKind, TreeIndex, UNKNOWN_SIZE } from './treeIndex';

/**
 * A TreeIndex under construction: entries appended one at a time (each after its parent), in
 * columns that grow by doubling and are trimmed once at the end — few, large, short-lived
 * buffers. Entry 0 is the root. Both ways of reading a tree (a listing, tree objects) fill it.
 */
export class TreeColumns {
  readonly names: string[] = [''];
  private parents = new Int32Array(1024);
  private kinds = new Uint8Array(1024);
  private oids = Buffer.alloc(1024 * 20);
  /** 20 (SHA-1) or 32 (SHA-256); known from the first id written. */
  private oidBytes = 0;

  constructor() {
    this.kinds[0] = EntryKind.Directory;
  }

  /** Appends an entry and returns its number. */
  add(parent: number, name: string, kind: EntryKind): number {
    const entry = this.names.length;
    if (entry === this.parents.length) {
      this.parents = grow(this.parents, new Int32Array(entry * 2));
      this.kinds = grow(this.kinds, new Uint8Array(entry * 2));
    }
    this.names.push(name);
    this.parents[entry] = parent;
    this.kinds[entry] = kind;
    return entry;
  }

  /** Sets an entry's object id from hex digits `buf[start, end)`. */
  setHexOid(entry: number, buf: Buffer, start: number, end: number): void {
    const at = this.oidSlot(entry, (end - start) >> 1);
    for (let i = start, o = at; i < end; i += 2) this.oids[o++] = (hexValue(buf[i]) << 4) | hexValue(buf[i + 1]);
  }

  /** Sets an entry's object id from raw bytes, `bytes` of them at `buf[start]`. */
  setRawOid(entry: number, buf: Buffer, start: number, bytes: number): void {
    const at = this.oidSlot(entry, bytes);
    // A loop, not Buffer.copy: for 20 bytes the native call costs more than the copy.
    for (let i = 0; i < bytes; i++) this.oids[at + i] = buf[start + i];
  }

  finish(commit: string): TreeIndex {
    const count = this.names.length;
    const oidBytes = this.oidBytes || 20;
    return assemble(commit, this.names, this.parents.slice(0, count), this.kinds.slice(0, count), Buffer.from(this.oids.subarray(0, count * oidBytes)), oidBytes);
  }

  private oidSlot(entry: number, bytes: number): number {
    this.oidBytes = bytes;
    if ((entry + 1) * bytes > this.oids.length) this.oids = grow(this.oids, Buffer.alloc(Math.max(this.oids.length * 2, (entry + 1) * bytes)));
    return entry * bytes;
  }
}

function grow<T extends Int32Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/** Each ASCII hex digit's value ('0'-'9', 'a'-'f', 'A'-'F'); a table beats branching per digit. */
const HEX_VALUES = new Uint8Array(128);
for (let c = 0; c < 128; c++) HEX_VALUES[c] = c >= 48 && c <= 57 ? c - 48 : (c | 32) >= 97 && (c | 32) <= 102 ? (c | 32) - 87 : 0;

function hexValue(c: number): number {
  return HEX_VALUES[c & 127];
}

function inOrder(names: string[], children: Int32Array, start: number, count: number): boolean {
  for (let i = start + 1; i < start + count; i++) if (names[children[i - 1]] > names[children[i]]) return false;
  return true;
}

function assemble(commit: string, names: string[], parents: Int32Array, kinds: Uint8Array, oids: Buffer, oidBytes: number): TreeIndex {
  const count = names.length;
  const sizes = new Float64Array(count).fill(UNKNOWN_SIZE);
  for (let e = 0; e < count; e++) if (kinds[e] === EntryKind.Directory || kinds[e] === EntryKind.Gitlink) sizes[e] = 0;

  // Group children by parent, then sort each group by name for binary search.
  const childCount = new Int32Array(count);
  for (let e = 1; e < count; e++) childCount[parents[e]]++;
  const childStart = new Int32Array(count);
  for (let e = 1, offset = 0; e <= count; e++) {
    offset += childCount[e - 1];
    if (e < count) childStart[e] = offset;
  }
  const fill = new Int32Array(count);
  const children = new Int32Array(Math.max(0, count - 1));
  for (let e = 1; e < count; e++) {
    const p = parents[e];
    children[childStart[p] + fill[p]++] = e;
  }
  // git lists a directory in its own order, which is ours too unless a subdirectory's name is a
  // prefix of a sibling's ("lib" sorts as "lib/", after "lib.c"): sort only groups out of order.
  for (let dir = 0; dir < count; dir++) {
    if (childCount[dir] > 1 && !inOrder(names, children, childStart[dir], childCount[dir])) {
      const group = children.subarray(childStart[dir], childStart[dir] + childCount[dir]);
      group.sort((a, b) => (names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : 0));
    }
  }
  return new TreeIndex(commit, oidBytes, names, parents, kinds, oids, sizes, childStart, childCount, children);
}
