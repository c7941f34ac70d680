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
  const names: string[] = [''];
  const parents: number[] = [0];
  const kinds: number[] = [EntryKind.Directory];
  let hex = Buffer.alloc(64 * 1024);
  let hexUsed = 0;
  let oidLength = 0;
  // Directory paths (bytes) on the current depth-first branch, with their entry numbers.
  const stack: Array<{ path: Buffer; entry: number }> = [{ path: Buffer.alloc(0), entry: 0 }];

  const addRecord = (buf: Buffer, start: number, end: number) => {
    // "<mode> <type> <oid>\t<path>"
    const tab = buf.indexOf(9, start);
    if (tab < 0 || tab > end) return;
    const oidStart = buf.lastIndexOf(32, tab) + 1;
    oidLength = tab - oidStart;
    if (hexUsed + oidLength > hex.length) hex = Buffer.concat([hex, Buffer.alloc(hex.length)]);
    buf.copy(hex, hexUsed, oidStart, tab);
    hexUsed += oidLength;
    const kind = kindOf(buf, start);
    const pathStart = tab + 1;
    let slash = end - 1;
    while (slash >= pathStart && buf[slash] !== 47) slash--;
    const dirEnd = slash < pathStart ? pathStart : slash;
    // Pop to this entry's parent, comparing bytes: no path strings are made (they would be garbage).
    while (stack.length > 1) {
      const top = stack[stack.length - 1].path;
      if (top.length === dirEnd - pathStart && buf.compare(top, 0, top.length, pathStart, dirEnd) === 0) break;
      stack.pop();
    }
    const entry = names.length;
    names.push(buf.toString('utf8', slash < pathStart ? pathStart : slash + 1, end));
    parents.push(stack[stack.length - 1].entry);
    kinds.push(kind);
    if (kind === EntryKind.Directory) stack.push({ path: Buffer.from(buf.subarray(pathStart, end)), entry });
  };

  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of listing as AsyncIterable<Buffer>) {
    const buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let start = 0;
    for (let nul = buf.indexOf(0, start); nul >= 0; nul = buf.indexOf(0, start)) {
      addRecord(buf, start, nul);
      start = nul + 1;
    }
    pending = buf.subarray(start);
  }
  if (pending.length) addRecord(pending, 0, pending.length);
  const oidBytes = (oidLength || 40) / 2;
  const packed = Buffer.alloc(names.length * oidBytes);
  Buffer.from(hex.toString('latin1', 0, hexUsed), 'hex').copy(packed, oidBytes);
  return assemble(commit, names, parents, kinds, packed, oidBytes);
}

function assemble(commit: string, names: string[], parentList: number[], kindList: number[], oids: Buffer, oidBytes: number): TreeIndex {
  const count = names.length;
  const parents = Int32Array.from(parentList);
  const kinds = Uint8Array.from(kindList);
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
  for (let dir = 0; dir < count; dir++) {
    if (childCount[dir] > 1) {
      const group = children.subarray(childStart[dir], childStart[dir] + childCount[dir]);
      group.sort((a, b) => (names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : 0));
    }
  }
  return new TreeIndex(commit, oidBytes, names, parents, kinds, oids, sizes, childStart, childCount, children);
}
