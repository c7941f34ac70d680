import { Readable } from 'node:stream';
import { TreeColumns } from './treeColumns';
import { EntryKind, TreeIndex } from './treeIndex';

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
 * bytes, not strings: names stay UTF-8 bytes, object ids hex bytes until packed.
 */
export async function buildTreeIndex(listing: Readable, commit: string): Promise<TreeIndex> {
  const columns = new TreeColumns();
  // Directory paths (bytes) on the current depth-first branch, with their entry numbers.
  const stack: Array<{ path: Buffer; entry: number }> = [{ path: Buffer.alloc(0), entry: 0 }];

  const addRecord = (buf: Buffer, start: number, end: number) => {
    // "<mode> <type> <oid>\t<path>"
    const tab = buf.indexOf(9, start);
    if (tab < 0 || tab > end) return;
    const oidStart = buf.lastIndexOf(32, tab) + 1;
    const kind = kindOf(buf, start);
    const pathStart = tab + 1;
    let slash = end - 1;
    while (slash >= pathStart && buf[slash] !== 47) slash--;
    const dirEnd = slash < pathStart ? pathStart : slash;
    // Pop to this entry's parent, comparing bytes: no path strings are made (they would be garbage).
    while (stack.length > 1 && !sameBytes(stack[stack.length - 1].path, buf, pathStart, dirEnd)) stack.pop();
    const entry = columns.add(stack[stack.length - 1].entry, buf, slash < pathStart ? pathStart : slash + 1, end, kind);
    columns.setHexOid(entry, buf, oidStart, tab);
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
  return columns.finish(commit);
}

function sameBytes(path: Buffer, buf: Buffer, start: number, end: number): boolean {
  if (path.length !== end - start) return false;
  for (let i = 0; i < path.length; i++) if (path[i] !== buf[start + i]) return false;
  return true;
}
