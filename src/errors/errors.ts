/**
 * The typed errors of gitfs-csi. Lower layers throw these; each edge maps them once
 * (errno in src/fuse, gRPC status codes in src/csi). Messages are already redacted.
 */

export type ErrorKind =
  | 'invalid-argument'
  | 'repository-not-found'
  | 'ref-not-found'
  | 'empty-repository'
  | 'authentication-required'
  | 'access-denied'
  | 'unavailable'
  | 'transient'
  | 'timeout'
  | 'object-missing'
  | 'corrupt-object'
  | 'preparation-failed'
  | 'not-ready'
  | 'commit-mismatch'
  | 'already-exists'
  | 'busy'
  | 'volume-not-found'
  | 'mountpoint-unusable'
  | 'fuse-unavailable'
  | 'overlay-unavailable'
  | 'no-space'
  | 'policy-refused'
  | 'limit-exceeded'
  | 'internal';

export class GitfsError extends Error {
  constructor(readonly kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A caller-supplied value is malformed; `field` names it. */
export class InvalidArgument extends GitfsError {
  constructor(readonly field: string, message: string) {
    super('invalid-argument', `${field}: ${message}`);
  }
}

export class RepositoryNotFound extends GitfsError {
  constructor(repository: string) {
    super('repository-not-found', `repository ${repository} was not found (or is not visible with the credentials given)`);
  }
}

export class RefNotFound extends GitfsError {
  constructor(repository: string, ref: string) {
    super('ref-not-found', `ref "${ref}" was not found in ${repository}`);
  }
}

export class EmptyRepository extends GitfsError {
  constructor(repository: string) {
    super('empty-repository', `repository ${repository} is empty: it has no commits to mount`);
  }
}

/** The server wants credentials and none were offered. */
export class AuthenticationRequired extends GitfsError {
  constructor(repository: string) {
    super('authentication-required', `repository ${repository} requires credentials and none were offered`);
  }
}

/** Credentials were offered and refused. */
export class AccessDenied extends GitfsError {
  constructor(repository: string) {
    super('access-denied', `access to ${repository} was denied with the credentials given`);
  }
}

/** The server cannot be reached (unknown host, connection refused, network down). */
export class Unavailable extends GitfsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('unavailable', message, options);
  }
}

/** A failure worth retrying: 5xx, early EOF, connection reset. */
export class TransientTransportError extends GitfsError {
  constructor(message: string) {
    super('transient', message);
  }
}

export class Timeout extends GitfsError {
  constructor(message: string) {
    super('timeout', message);
  }
}

export class ObjectMissing extends GitfsError {
  constructor(oid: string, message = `object ${oid} is not available`) {
    super('object-missing', message);
  }
}

export class CorruptObject extends GitfsError {
  constructor(oid: string, detail: string) {
    super('corrupt-object', `object ${oid} failed verification: ${detail}`);
  }
}

export class PreparationFailed extends GitfsError {
  constructor(readonly phase: string, cause: GitfsError | Error) {
    super('preparation-failed', `preparation failed while ${phase}: ${cause.message}`, { cause });
  }
}

export class NotReady extends GitfsError {
  constructor(message: string) {
    super('not-ready', message);
  }
}

/** A volume names a required commit and its ref resolves to another one. */
export class CommitMismatch extends GitfsError {
  constructor(repository: string, ref: string, resolved: string, required: string) {
    super('commit-mismatch', `ref "${ref}" of ${repository} resolves to ${resolved}, not the required commit ${required}`);
  }
}

/** The same target is already published with different arguments. */
export class AlreadyExists extends GitfsError {
  constructor(message: string) {
    super('already-exists', message);
  }
}

/** Another call on the same volume is still in flight; the caller retries. */
export class Busy extends GitfsError {
  constructor(message: string) {
    super('busy', message);
  }
}

export class VolumeNotFound extends GitfsError {
  constructor(message: string) {
    super('volume-not-found', message);
  }
}

/** A mount's target cannot take it: missing, not a directory, not empty, or already a mount point. */
export class MountpointUnusable extends GitfsError {
  constructor(readonly path: string, why: string) {
    super('mountpoint-unusable', `mountpoint ${path} ${why}`);
  }
}

/** This process cannot mount FUSE here: /dev/fuse, mount(2) or fusermount3 is missing or not permitted. */
export class FuseUnavailable extends GitfsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('fuse-unavailable', message, options);
  }
}

/** This node cannot give a volume a writable layer: its kernel lacks overlayfs. */
export class OverlayUnavailable extends GitfsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('overlay-unavailable', message, options);
  }
}

/** The node's disk cannot hold what a volume asks for (its writable layer). */
export class NoSpace extends GitfsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('no-space', message, options);
  }
}

/** The node's remote policy refuses a volume's remote (its name, or an address it resolved to). */
export class PolicyRefused extends GitfsError {
  constructor(repository: string, why: string) {
    super('policy-refused', `repository ${repository} is refused by the remote policy: ${why}`);
  }
}

/** A commit is larger than a volume may mount (entries, bytes), or a blob larger than the node serves. */
export class LimitExceeded extends GitfsError {
  constructor(message: string) {
    super('limit-exceeded', message);
  }
}

/** A pack entry is larger than its reader holds whole; its header said so before its content came. */
export class BlobTooLarge extends GitfsError {
  constructor(readonly size: number, largest: number) {
    super('limit-exceeded', `a blob of ${size} bytes is larger than a transfer holds whole (${largest})`);
  }
}

/** Wraps anything thrown into a GitfsError without losing it. */
export function asGitfsError(err: unknown): GitfsError {
  if (err instanceof GitfsError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new GitfsError('internal', message, { cause: err });
}
