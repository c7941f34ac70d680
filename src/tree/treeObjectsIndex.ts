import { GitfsError } from '../errors/errors';
import { TreeColumns } from './treeColumns';
import { EntryKind, TreeIndex } from './treeIndex';

/** The entry kind from a tree object's mode ("40000", "100644", "100755", "120000", "160000"). */
function kindOf(tree: Buffer, at: number): EntryKind {
  if (tree[at] === 52 /* 4… */) return EntryKind.Directory;
  const second = tree[at + 1];
  if (second === 50 /* 12… */) return EntryKind.Symlink;
  if (second === 54 /* 16… */) return EntryKind.Gitlink;
  return tree[at + 3] === 55 /* 1007… */ ? EntryKind.Executable : EntryKind.File;
}

/**
 * Builds a TreeIndex from raw tree objects as a pack delivers them, in whatever order: a tree is
 * indexed as soon as both it and the directory entry naming it are known, so indexing keeps pace
 * with the transfer rather than following it. Each entry of a tree object is
 * "<mode> <name>\0<raw id>". The same tree may sit under several directories.
 */
export class TreeObjectsIndexer {
  private readonly columns = new TreeColumns();
  private readonly trees = new Map<string, Buffer>();
  /** Directory entries whose tree has not arrived yet, by tree id. */
  private readonly waiting = new Map<string, number[]>();
  private rooted = false;

  constructor(private readonly commit: string) {}

  /** The commit's root tree: entry 0. */
  setRoot(tree: string): void {
    this.rooted = true;
    this.place(0, tree);
  }

  addTree(oid: string, content: Buffer): void {
    this.trees.set(oid, content);
    const entries = this.waiting.get(oid);
    if (!entries) return;
    this.waiting.delete(oid);
    for (const entry of entries) this.expand(entry, oid, content);
  }

  finish(): TreeIndex {
    if (!this.rooted) throw new GitfsError('internal', `commit ${this.commit} was not in the pack fetched for it`);
    const missing = this.waiting.keys().next();
    if (!missing.done) throw new GitfsError('internal', `tree ${missing.value} of commit ${this.commit} was not in the pack fetched for it`);
    this.trees.clear();
    return this.columns.finish(this.commit);
  }

  private place(entry: number, tree: string): void {
    const content = this.trees.get(tree);
    if (content) return this.expand(entry, tree, content);
    const entries = this.waiting.get(tree);
    if (entries) entries.push(entry);
    else this.waiting.set(tree, [entry]);
  }

  /** Adds the entries of `tree` under directory `entry`, and of every subtree already here. */
  private expand(entry: number, oid: string, content: Buffer): void {
    const pending: Array<[number, string, Buffer]> = [[entry, oid, content]];
    const oidBytes = this.commit.length / 2;
    while (pending.length > 0) {
      const [parent, treeOid, tree] = pending.pop()!;
      for (let at = 0; at < tree.length; ) {
        let space = at;
        while (space < tree.length && tree[space] !== 32) space++;
        let nul = space + 1;
        while (nul < tree.length && tree[nul] !== 0) nul++;
        if (nul + oidBytes >= tree.length + 1) throw new GitfsError('internal', `tree ${treeOid} of commit ${this.commit} is malformed`);
        const kind = kindOf(tree, at);
        const child = this.columns.add(parent, tree, space + 1, nul, kind);
        this.columns.setRawOid(child, tree, nul + 1, oidBytes);
        at = nul + 1 + oidBytes;
        if (kind !== EntryKind.Directory) continue;
        const subtree = tree.toString('hex', nul + 1, at);
        const known = this.trees.get(subtree);
        if (known) pending.push([child, subtree, known]);
        else this.place(child, subtree);
      }
    }
  }
}
