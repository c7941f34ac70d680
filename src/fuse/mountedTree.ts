import { BlobSource } from '../hydrate/blobSource';
import { TreeIndex } from '../tree/treeIndex';
import { ReadinessGate } from './readinessGate';

/** What a mount serves once its readiness gate opens. */
export interface MountedTree {
  index: TreeIndex;
  source: BlobSource;
  /** Opens when every blob size is known; getattr of a file of unknown size waits on it. */
  sizes: ReadinessGate<void>;
  /** Timestamps shown for every entry: the commit's committer date. */
  commitTime: Date;
  /** The commit's history for its `.git`: one promise for every caller (made anew only after a failure). */
  history: () => Promise<GitHistory>;
}

/** The commits and trees of a commit's history as one pack on disk (`<dir>/<name>.pack`, `.idx`). */
export interface GitHistory {
  name: string;
  dir: string;
  /** Commits whose parents the history leaves out (`.git/shallow`). */
  shallow: string[];
  /** Every blob id of the history, sorted, one per line; absent when the history is the commit alone. */
  blobsFile?: string;
}
