import { formatBytes } from '../config/byteSize';
import { LimitExceeded } from '../errors/errors';
import { Preparation } from './preparation';

/** What one publish checks against its commit's tree before mounting it. */
export interface VolumeLimits {
  maxEntries?: number;
  maxBytes?: number;
  /** Whose byte limit it is, for the message: the volume's attribute or the node's flag. */
  bytesFrom: 'volume' | 'node';
}

/**
 * Fails with LimitExceeded when the ready tree is larger than the limits; a byte limit waits for
 * the tree's sizes (learned after ready) for at most `waitMs`.
 */
export async function checkTreeLimits(preparation: Preparation, limits: VolumeLimits, waitMs: number): Promise<void> {
  const { index } = preparation.gate.value!;
  const commit = `commit ${preparation.resolved.commit} of ${preparation.access.remote.display}`;
  if (limits.maxEntries !== undefined && index.count > limits.maxEntries) {
    throw new LimitExceeded(`${commit} has ${index.count} entries, over the volume's limit of ${limits.maxEntries} (maxTreeEntries)`);
  }
  if (limits.maxBytes === undefined) return;
  await preparation.sizes.wait(waitMs);
  if (index.totalBytes > limits.maxBytes) {
    const whose = limits.bytesFrom === 'volume' ? "the volume's limit (maxCommitBytes)" : "this node's limit (--max-commit-bytes)";
    throw new LimitExceeded(`${commit} holds ${formatBytes(index.totalBytes)} of files, over ${whose} of ${formatBytes(limits.maxBytes)}`);
  }
}
