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
}
