import { status } from '@grpc/grpc-js';
import { ErrorKind, GitfsError, PreparationFailed } from '../errors/errors';

const CODES: Record<ErrorKind, status> = {
  'invalid-argument': status.INVALID_ARGUMENT,
  'repository-not-found': status.NOT_FOUND,
  'ref-not-found': status.NOT_FOUND,
  'volume-not-found': status.NOT_FOUND,
  'empty-repository': status.FAILED_PRECONDITION,
  'commit-mismatch': status.FAILED_PRECONDITION,
  'authentication-required': status.UNAUTHENTICATED,
  'access-denied': status.PERMISSION_DENIED,
  unavailable: status.UNAVAILABLE,
  transient: status.UNAVAILABLE,
  timeout: status.DEADLINE_EXCEEDED,
  'not-ready': status.ABORTED,
  busy: status.ABORTED,
  'already-exists': status.ALREADY_EXISTS,
  'mountpoint-unusable': status.FAILED_PRECONDITION,
  'fuse-unavailable': status.FAILED_PRECONDITION,
  'overlay-unavailable': status.FAILED_PRECONDITION,
  'no-space': status.RESOURCE_EXHAUSTED,
  'policy-refused': status.FAILED_PRECONDITION,
  'limit-exceeded': status.RESOURCE_EXHAUSTED,
  'object-missing': status.INTERNAL,
  'corrupt-object': status.INTERNAL,
  'preparation-failed': status.INTERNAL,
  internal: status.INTERNAL,
};

/**
 * The one place typed errors become CSI status codes. A failed preparation answers with
 * the code of what made it fail (kubelet shows the message and retries later).
 */
export function statusOf(err: GitfsError): status {
  if (err instanceof PreparationFailed && err.cause instanceof GitfsError) return statusOf(err.cause);
  return CODES[err.kind];
}
