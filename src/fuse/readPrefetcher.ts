import { Priority } from '../hydrate/blobSource';
import { Hydrator } from '../hydrate/hydrator';
import { priorityClassOf } from '../hydrate/priorityClass';
import { EntryKind } from '../tree/treeIndex';
import { MountedTree } from './mountedTree';

export interface PrefetchOptions {
  /** On a cold read, also queue this many other files of the same directory (0 disables). */
  siblingFiles: number;
  siblingBytes: number;
  /** After this many cold reads the reader is taken to be reading everything: queue the whole tree (0 disables). */
  bulkAfterColdReads: number;
}

export const DEFAULT_PREFETCH: PrefetchOptions = {
  siblingFiles: 256,
  siblingBytes: 32 * 1024 * 1024,
  bulkAfterColdReads: 16,
};

/**
 * Decides what to fetch beyond what is read. Only reads of content trigger it (never lookup,
 * getattr or readdir, which serving threads answer without the main thread), so walking the
 * tree costs no blob bytes. A cold read queues its directory's other files behind it; many cold reads mean
 * a full scan, so the rest of the tree is queued in the background, within the cache budget.
 */
export class ReadPrefetcher {
  /** Files read cold so far (up to the bulk threshold): many readers of one file are one cold read. */
  private readonly coldFiles = new Set<number>();
  private bulkQueued = false;
  private readonly prefetchedDirs = new Set<number>();

  constructor(private readonly hydrator: Hydrator, private readonly options: PrefetchOptions) {}

  onColdRead(tree: MountedTree, entry: number): void {
    const index = tree.index;
    const dir = index.parents[entry];
    if (this.options.siblingFiles > 0 && !this.prefetchedDirs.has(dir)) {
      this.prefetchedDirs.add(dir);
      // A link read cold means a listing that reads every link (ls -l): its sibling links are asked for
      // as reads too, so they go out in the same fetch.
      const linkPriority = index.kind(entry) === EntryKind.Symlink ? Priority.Read : undefined;
      let files = 0;
      let bytes = 0;
      for (const sibling of index.childrenOf(dir)) {
        const link = index.kind(sibling) === EntryKind.Symlink;
        if (sibling === entry || !(link || this.isFile(tree, sibling))) continue;
        const size = Math.max(0, index.size(sibling));
        if (files >= this.options.siblingFiles || bytes + size > this.options.siblingBytes) break;
        files++;
        bytes += size;
        this.queue(tree, sibling, (link ? linkPriority : undefined) ?? priorityClassOf(index.name(sibling)));
      }
    }
    if (this.options.bulkAfterColdReads === 0 || this.bulkQueued) return;
    if (this.coldFiles.size < this.options.bulkAfterColdReads) this.coldFiles.add(entry);
    if (this.coldFiles.size >= this.options.bulkAfterColdReads) this.queueEverything(tree);
  }

  private queueEverything(tree: MountedTree): void {
    const index = tree.index;
    // Only when the whole tree fits in half the cache: otherwise a scan would evict its own prefetch.
    if (!index.allSizesKnown || index.totalBytes > this.hydrator.cache.maxBytes / 2) return;
    this.bulkQueued = true;
    const blobs: Array<{ oid: string; size: number }> = [];
    for (let e = 0; e < index.count; e++) if (this.isFile(tree, e)) blobs.push({ oid: index.oid(e), size: index.size(e) });
    void this.hydrator.prefetchTree(tree.source, blobs);
  }

  /** A regular file with content (not a link, not empty). */
  private isFile(tree: MountedTree, entry: number): boolean {
    const kind = tree.index.kind(entry);
    return (kind === EntryKind.File || kind === EntryKind.Executable) && tree.index.size(entry) !== 0;
  }

  private queue(tree: MountedTree, entry: number, priority: Priority): void {
    const oid = tree.index.oid(entry);
    if (this.hydrator.cache.has(oid)) return;
    void this.hydrator.hydrate(tree.source, oid, priority, Math.max(0, tree.index.size(entry)));
  }
}
