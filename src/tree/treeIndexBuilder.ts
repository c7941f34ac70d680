import { Readable } from 'node:stream';
import { EntryKind, TreeIndex, UNKNOWN_SIZE } from './treeIndex';

/** The entry kind from the mode's digits ("040000", "100644", "100755", "120000", "160000"). */
function kindOf(record: Buffer, at: number): EntryKind {
  const second = record[at + 1];
  if (record[at] === 48 /* 0 */) return EntryKind.Directory;
  if (second === 50 /* 12… */) return EntryKind.Symlink;
  if (second === 54 /* 16… */) return EntryKind.Gitlink;
  return record[at + 3] === 55 /* 1007… */ ? EntryKind.Executable : EntryKind.File;
}

/**
 * Builds a TreeIndex from the NUL-separated output of `git ls-tree -r -t -z`, which lists a
 * tree before its contents (depth first), so each entry's parent is already known. Parses
 * bytes, not strings: only names become strings, object ids stay as hex bytes until packed.
 */
export async function buildTreeIndex(listing: Readable, commit: string): Promise<TreeIndex> {
  // Columns grow by doubling and are trimmed once at the end: few, large, short-lived buffers.
  const names: string[] = [''];
  let parents = new Int32Array(1024);
  let kinds = new Uint8Array(1024);
  let oids = Buffer.alloc(1024 * 20);
  let oidBytes = 0;
  kinds[0] = EntryKind.Directory;
  // Directory paths (bytes) on the current depth-first branch, with their entry numbers.
  const stack: Array<{ path: Buffer; entry: number }> = [{ path: Buffer.alloc(0), entry: 0 }];

  const addRecord = (buf: Buffer, start: number, end: number) => {
    // "<mode> <type> <oid>\t<path>"
    const tab = buf.indexOf(9, start);
    if (tab < 0 || tab > end) return;
    const oidStart = buf.lastIndexOf(32, tab) + 1;
    oidBytes = (tab - oidStart) >> 1;
    const entry = names.length;
    if (entry === parents.length) {
      parents = grow(parents, new Int32Array(entry * 2));
      kinds = grow(kinds, new Uint8Array(entry * 2));
    }
    if ((entry + 1) * oidBytes > oids.length) oids = grow(oids, Buffer.alloc(oids.length * 2));
    for (let i = oidStart, o = entry * oidBytes; i < tab; i += 2) oids[o++] = (hexValue(buf[i]) << 4) | hexValue(buf[i + 1]);
    const kind = kindOf(buf, start);
    const pathStart = tab + 1;
    let slash = end - 1;
    let ascii = true;
    for (; slash >= pathStart && buf[slash] !== 47; slash--) if (buf[slash] > 127) ascii = false;
    const dirEnd = slash < pathStart ? pathStart : slash;
    // Pop to this entry's parent, comparing bytes: no path strings are made (they would be garbage).
    while (stack.length > 1 && !sameBytes(stack[stack.length - 1].path, buf, pathStart, dirEnd)) stack.pop();
    // Most names are ASCII, and decoding them as latin1 skips UTF-8 validation: the same string, sooner.
    names.push(buf.toString(ascii ? 'latin1' : 'utf8', slash < pathStart ? pathStart : slash + 1, end));
    parents[entry] = stack[stack.length - 1].entry;
    kinds[entry] = kind;
    if (kind === EntryKind.Directory) stack.push({ path: Buffer.from(buf.subarray(pathStart, end)), entry });
  };

  // A record cut by a chunk boundary is joined on its own; the chunks themselves are never copied.
  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of listing as AsyncIterable<Buffer>) {
    let start = 0;
    if (pending.length) {
      const nul = chunk.indexOf(0);
      if (nul < 0) {
        pending = Buffer.concat([pending, chunk]);
        continue;
      }
      const record = Buffer.concat([pending, chunk.subarray(0, nul)]);
      addRecord(record, 0, record.length);
      start = nul + 1;
    }
    for (let nul = chunk.indexOf(0, start); nul >= 0; nul = chunk.indexOf(0, start)) {
      addRecord(chunk, start, nul);
      start = nul + 1;
    }
    pending = Buffer.from(chunk.subarray(start));
  }
  if (pending.length) addRecord(pending, 0, pending.length);
  const count = names.length;
  oidBytes ||= 20;
  return assemble(commit, names, parents.slice(0, count), kinds.slice(0, count), Buffer.from(oids.subarray(0, count * oidBytes)), oidBytes);
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

function sameBytes(path: Buffer, buf: Buffer, start: number, end: number): boolean {
  if (path.length !== end - start) return false;
  for (let i = 0; i < path.length; i++) if (path[i] !== buf[start + i]) return false;
  return true;
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
