import Fuse from 'fuse-native';
import { GitfsError } from '../errors/errors';

/**
 * The one place that turns errors into errno values. A mount whose preparation failed, a
 * fetch that failed or timed out, or content that could not be verified all read as EIO:
 * the reason is logged and kept on the mount, not squeezed into an errno.
 */
export function errnoOf(err: unknown): number {
  if (err instanceof GitfsError && err.kind === 'invalid-argument') return Fuse.EINVAL;
  return Fuse.EIO;
}

export const ENOENT = Fuse.ENOENT;
export const EROFS = Fuse.EROFS;
export const EISDIR = Fuse.EISDIR;
export const EINVAL = Fuse.EINVAL;
export const EBADF = Fuse.EBADF;
