/**
 * What a volume's `.git` says about the ref it was asked for: HEAD names the branch when the ref
 * was one (`git branch --show-current`), and a full ref (branch, tag, any `refs/…`) is there in
 * packed-refs, pointing at the commit, or at the tag object of an annotated tag (with the commit
 * as its peeled line). A commit id, or the remote's HEAD, gives a detached HEAD.
 */
export interface RefFiles {
  head: string;
  /** Undefined when there is no ref to record. */
  packedRefs?: string;
}

export function refFilesOf(commit: string, refName: string, tag?: string): RefFiles {
  if (!refName.startsWith('refs/')) return { head: `${commit}\n` };
  const head = refName.startsWith('refs/heads/') ? `ref: ${refName}\n` : `${commit}\n`;
  const ref = tag ? `${tag} ${refName}\n^${commit}\n` : `${commit} ${refName}\n`;
  return { head, packedRefs: `# pack-refs with: peeled fully-peeled sorted \n${ref}` };
}

/**
 * What one volume shows of `.git` beyond its commit's shared tree (whose HEAD is the commit,
 * detached): the ref it asked for, or no `.git` at all.
 */
export type GitView = { refs: RefFiles } | 'no-git';
