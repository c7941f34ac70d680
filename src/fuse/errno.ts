import { GitfsError } from '../errors/errors';

/** Linux errno values: the FUSE layer is the one place that knows them. */
export const Errno = {
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EFBIG: 27,
  EROFS: 30,
  ENOSYS: 38,
} as const;

/**
 * The one place that turns errors into errno values. A mount whose preparation failed, a
 * fetch that failed or timed out, or content that could not be verified all read as EIO:
 * the reason is logged and kept on the mount, not squeezed into an errno. A blob over the node's
 * size limit reads as EFBIG.
 */
export function errnoOf(err: unknown): number {
  if (typeof err === 'number') return err;
  if (err instanceof GitfsError && err.kind === 'invalid-argument') return Errno.EINVAL;
  if (err instanceof GitfsError && err.kind === 'limit-exceeded') return Errno.EFBIG;
  return Errno.EIO;
}
