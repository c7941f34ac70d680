import { Readable } from 'node:stream';
import { EntryKind, TreeIndex, UNKNOWN_SIZE } from './treeIndex';

const KIND_BY_MODE: Record<string, EntryKind> = {
  '040000': EntryKind.Directory,
  '100644': EntryKind.File,
  '100664': EntryKind.File,
  '100755': EntryKind.Executable,
  '120000': EntryKind.Symlink,
  '160000': EntryKind.Gitlink,
};

/**
 * Builds a TreeIndex from the NUL-separated output of `git ls-tree -r -t -z`, which lists a
 * tree before its contents (depth first), so each entry's parent is already known.
 */
export async function buildTreeIndex(listing: Readable, commit: string): Promise<TreeIndex> {
  const names: string[] = [''];
  const parents: number[] = [0];
  const kinds: number[] = [EntryKind.Directory];
  const oidHex: string[] = [''];
  // Directory paths on the current depth-first branch, with their entry numbers.
  const stack: Array<{ path: string; entry: number }> = [{ path: '', entry: 0 }];
  let pending = '';
  let oidLength = 40;

  const addRecord = (record: string) => {
    // "<mode> <type> <oid>\t<path>"
    const tab = record.indexOf('\t');
    const [mode, , oid] = record.slice(0, tab).split(' ');
    const path = record.slice(tab + 1);
    const kind = KIND_BY_MODE[mode] ?? EntryKind.File;
    oidLength = oid.length;
    const slash = path.lastIndexOf('/');
    const dir = slash < 0 ? '' : path.slice(0, slash);
    while (stack.length > 1 && stack[stack.length - 1].path !== dir) stack.pop();
    const entry = names.length;
    names.push(slash < 0 ? path : path.slice(slash + 1));
    parents.push(stack[stack.length - 1].entry);
    kinds.push(kind);
    oidHex.push(oid);
    if (kind === EntryKind.Directory) stack.push({ path, entry });
  };

  listing.setEncoding('utf8');
  for await (const chunk of listing as AsyncIterable<string>) {
    pending += chunk;
    let start = 0;
    for (let nul = pending.indexOf('\0'); nul >= 0; nul = pending.indexOf('\0', start)) {
      addRecord(pending.slice(start, nul));
      start = nul + 1;
    }
    pending = pending.slice(start);
  }
  if (pending !== '') addRecord(pending);
  return assemble(commit, names, parents, kinds, oidHex, oidLength / 2);
}

function assemble(commit: string, names: string[], parentList: number[], kindList: number[], oidHex: string[], oidBytes: number): TreeIndex {
  const count = names.length;
  const parents = Int32Array.from(parentList);
  const kinds = Uint8Array.from(kindList);
  const oids = Buffer.alloc(count * oidBytes);
  for (let e = 1; e < count; e++) oids.write(oidHex[e], e * oidBytes, 'hex');
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
