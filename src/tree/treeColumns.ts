import { compareBytes, EntryKind, TreeIndex, TreeIndexColumns, UNKNOWN_SIZE } from './treeIndex';

/**
 * A TreeIndex under construction: entries appended one at a time (each after its parent), in
 * columns that grow by doubling — few, large, short-lived buffers. Entry 0 is the root. Both ways
 * of reading a tree (a listing, tree objects) fill it; `finish` numbers the entries canonically
 * and moves them into shared memory.
 */
export class TreeColumns {
  private count = 1;
  private parents = new Int32Array(1024);
  private kinds = new Uint8Array(1024);
  /** Where each entry's name ends in `names` (entry e's name starts where e-1's ends). */
  private nameEnds = new Int32Array(1024);
  private names = Buffer.alloc(16 * 1024);
  private oids = Buffer.alloc(1024 * 20);
  /** 20 (SHA-1) or 32 (SHA-256); known from the first id written. */
  private oidBytes = 0;

  constructor() {
    this.kinds[0] = EntryKind.Directory;
  }

  /** Appends an entry named by the bytes `buf[start, end)` and returns its number. */
  add(parent: number, buf: Uint8Array, start: number, end: number, kind: EntryKind): number {
    const entry = this.count++;
    if (entry === this.parents.length) {
      this.parents = grow(this.parents, new Int32Array(entry * 2));
      this.kinds = grow(this.kinds, new Uint8Array(entry * 2));
      this.nameEnds = grow(this.nameEnds, new Int32Array(entry * 2));
    }
    const at = this.nameEnds[entry - 1];
    const length = end - start;
    if (at + length > this.names.length) this.names = grow(this.names, Buffer.alloc(Math.max(this.names.length * 2, at + length)));
    // A loop, not Buffer.copy: for names this short the native call costs more than the copy.
    for (let i = 0; i < length; i++) this.names[at + i] = buf[start + i];
    this.nameEnds[entry] = at + length;
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
    for (let i = 0; i < bytes; i++) this.oids[at + i] = buf[start + i];
  }

  finish(commit: string): TreeIndex {
    return new TreeIndex(this.assemble(commit));
  }

  private oidSlot(entry: number, bytes: number): number {
    this.oidBytes = bytes;
    if ((entry + 1) * bytes > this.oids.length) this.oids = grow(this.oids, Buffer.alloc(Math.max(this.oids.length * 2, (entry + 1) * bytes)));
    return entry * bytes;
  }

  private nameStart(entry: number): number {
    return entry === 0 ? 0 : this.nameEnds[entry - 1];
  }

  /**
   * Renumbers breadth first, each directory's children in byte order of their names: the same
   * tree always gets the same numbers (they are its inode numbers, which a successor process must
   * answer alike), however it was read, and a directory's children are consecutive entries.
   */
  private assemble(commit: string): TreeIndexColumns {
    const count = this.count;
    const oidBytes = this.oidBytes || 20;
    // Group children by parent, in the order they were added.
    const childCount = new Int32Array(count);
    for (let e = 1; e < count; e++) childCount[this.parents[e]]++;
    const groupStart = new Int32Array(count + 1);
    for (let e = 0; e < count; e++) groupStart[e + 1] = groupStart[e] + childCount[e];
    const fill = groupStart.slice(0, count);
    const grouped = new Int32Array(Math.max(0, count - 1));
    for (let e = 1; e < count; e++) grouped[fill[this.parents[e]]++] = e;
    // git lists a directory in its own order, which is ours too unless a subdirectory's name is a
    // prefix of a sibling's ("lib" sorts as "lib/", after "lib.c"): sort only groups out of order.
    const compare = (a: number, b: number) => this.compareNames(a, b);
    for (let dir = 0; dir < count; dir++) {
      const start = groupStart[dir];
      const end = groupStart[dir + 1];
      let sorted = true;
      for (let i = start + 1; i < end && sorted; i++) sorted = compare(grouped[i - 1], grouped[i]) < 0;
      if (!sorted) grouped.subarray(start, end).sort(compare);
    }

    const columns = TreeIndex.allocate(commit, oidBytes, count, this.nameEnds[count - 1]);
    const renumbered = new Int32Array(count); // old entry -> new entry
    const order = new Int32Array(count); // new entry -> old entry
    let next = 1;
    let nameAt = 0;
    for (let e = 0; e < count; e++) {
      const old = order[e];
      renumbered[old] = e;
      columns.parents[e] = e === 0 ? 0 : renumbered[this.parents[old]];
      columns.kinds[e] = this.kinds[old];
      columns.oids.set(this.oids.subarray(old * oidBytes, (old + 1) * oidBytes), e * oidBytes);
      const nameStart = this.nameStart(old);
      const nameEnd = this.nameEnds[old];
      columns.names.set(this.names.subarray(nameStart, nameEnd), nameAt);
      nameAt += nameEnd - nameStart;
      columns.nameEnds[e] = nameAt;
      columns.sizes[e] = this.kinds[old] === EntryKind.Directory || this.kinds[old] === EntryKind.Gitlink ? 0 : UNKNOWN_SIZE;
      columns.firstChild[e] = next;
      columns.childCount[e] = childCount[old];
      for (let i = groupStart[old]; i < groupStart[old + 1]; i++) order[next++] = grouped[i];
    }
    return columns;
  }

  private compareNames(a: number, b: number): number {
    return compareBytes(this.names, this.nameStart(a), this.nameEnds[a], this.names, this.nameStart(b), this.nameEnds[b]);
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
