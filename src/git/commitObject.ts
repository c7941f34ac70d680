import { GitfsError } from '../errors/errors';

/** What a volume needs of a commit object: its root tree, and when it was committed. */
export interface CommitFacts {
  tree: string;
  committedAt: Date;
}

/** Reads a commit object's headers ("tree <id>" first, then "committer Name <email> <seconds> <zone>"). */
export function parseCommit(commit: string, content: string): CommitFacts {
  const headers = content.slice(0, content.indexOf('\n\n') >>> 0).split('\n');
  const tree = headers[0]?.startsWith('tree ') ? headers[0].slice('tree '.length) : undefined;
  const committer = headers.find((line) => line.startsWith('committer '));
  const seconds = Number(committer?.split(' ').at(-2));
  if (!tree || !Number.isFinite(seconds)) throw new GitfsError('internal', `commit ${commit} has no readable tree or committer time`);
  return { tree, committedAt: new Date(seconds * 1000) };
}
