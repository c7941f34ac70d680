import { readFile } from 'node:fs/promises';
import { EntryKind, TreeIndex, UNKNOWN_SIZE } from '../tree/treeIndex';

/**
 * The blobs a volume's `.git` shows as loose objects, each at a fixed position: first those of
 * the commit's tree (known with the tree, sizes from its index), in id order; then those only
 * older commits of the history reach (read from the history's list when first needed), in id
 * order. Positions are the same in every process that serves the commit.
 */
export class LooseBlobs {
  private readonly treeOids: string[];
  private readonly treeEntries: Int32Array;
  private history: Promise<string[]> | undefined;
  private historyOids: string[] | undefined;

  constructor(private readonly index: TreeIndex, private readonly historyBlobsFile: () => Promise<string | undefined>) {
    const byOid = new Map<string, number>();
    for (let entry = 0; entry < index.count; entry++) {
      const kind = index.kind(entry);
      if (kind === EntryKind.File || kind === EntryKind.Executable || kind === EntryKind.Symlink) byOid.set(index.oid(entry), entry);
    }
    this.treeOids = [...byOid.keys()].sort();
    this.treeEntries = Int32Array.from(this.treeOids, (oid) => byOid.get(oid)!);
  }

  /** The position of blob `oid`, or undefined when the history does not reach it. */
  async find(oid: string): Promise<number | undefined> {
    const inTree = search(this.treeOids, oid);
    if (this.treeOids[inTree] === oid) return inTree;
    const older = await this.olderBlobs();
    const at = search(older, oid);
    return older[at] === oid ? this.treeOids.length + at : undefined;
  }

  /** Positions of the blobs whose ids start with the two hex digits `prefix`. */
  async withPrefix(prefix: string): Promise<number[]> {
    const positions: number[] = [];
    const end = prefix + 'g'; // after every id with this prefix
    for (let i = search(this.treeOids, prefix); i < this.treeOids.length && this.treeOids[i] < end; i++) positions.push(i);
    const older = await this.olderBlobs();
    for (let i = search(older, prefix); i < older.length && older[i] < end; i++) positions.push(this.treeOids.length + i);
    return positions;
  }

  /** Whether `position` names a blob (reading the history's list if it is past the tree's). */
  async has(position: number): Promise<boolean> {
    return position < this.treeOids.length || position - this.treeOids.length < (await this.olderBlobs()).length;
  }

  /** The id at a position `has` or `find` confirmed. */
  oid(position: number): string {
    return position < this.treeOids.length ? this.treeOids[position] : this.historyOids![position - this.treeOids.length];
  }

  /** The blob's size when known without its content (blobs of the tree, once sized). */
  knownSize(position: number): number | undefined {
    if (position >= this.treeOids.length) return undefined;
    const size = this.index.sizes[this.treeEntries[position]];
    return size === UNKNOWN_SIZE ? undefined : size;
  }

  /** Whether the blob is one of the tree's (its size comes with the tree's sizes). */
  inTree(position: number): boolean {
    return position < this.treeOids.length;
  }

  private olderBlobs(): Promise<string[]> {
    this.history ??= (async () => {
      const file = await this.historyBlobsFile();
      const all = file ? (await readFile(file, 'latin1')).split('\n').filter(Boolean) : [];
      const inTree = new Set(this.treeOids);
      this.historyOids = all.filter((oid) => !inTree.has(oid));
      return this.historyOids;
    })();
    this.history.catch(() => (this.history = undefined));
    return this.history;
  }
}

/** The first position in sorted `oids` not before `oid`. */
function search(oids: string[], oid: string): number {
  let low = 0;
  let high = oids.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (oids[middle] < oid) low = middle + 1;
    else high = middle;
  }
  return low;
}
