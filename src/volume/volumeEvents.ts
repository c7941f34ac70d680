import { ErrorKind, GitfsError, PreparationFailed, asGitfsError } from '../errors/errors';
import { EventRecorder, EventType } from '../kube/eventRecorder';
import { redact } from '../log/redact';
import { Preparation } from '../prepare/preparation';
import { Published } from '../prepare/publisher';
import { PodInfo } from './volumeSpec';

/** A preparation still running this long after its publish gets a warning on the pod. */
const SLOW_AFTER_MS = 30_000;

/** What a person can do something about, by error kind, ahead of the error's own words. */
const SUMMARIES: Record<ErrorKind, string> = {
  'invalid-argument': 'invalid volume attributes',
  'repository-not-found': 'repository not found',
  'ref-not-found': 'unknown ref',
  'empty-repository': 'the repository is empty',
  'authentication-required': 'the repository needs credentials',
  'access-denied': 'credentials refused',
  unavailable: 'network',
  transient: 'network',
  timeout: 'network timeout',
  'object-missing': 'the remote lacks an object',
  'corrupt-object': 'corrupt data from the remote',
  'preparation-failed': 'preparation failed',
  'not-ready': 'still preparing',
  'commit-mismatch': 'the ref no longer names the pinned commit',
  'already-exists': 'the target holds another volume',
  busy: 'busy',
  'volume-not-found': 'volume not found',
  'mountpoint-unusable': 'the mount point is unusable',
  'fuse-unavailable': 'FUSE is unavailable on the node',
  'overlay-unavailable': 'overlayfs is unavailable on the node',
  'no-space': 'the node is out of space',
  'policy-refused': 'policy refused',
  'limit-exceeded': 'over a limit',
  internal: 'internal error',
};

/** Kinds that are no failure of the volume: a retry of the same call continues where this one stopped. */
const NOT_FAILURES = new Set<ErrorKind>(['not-ready', 'busy']);

/** "credentials refused: …": a failure as its pod's event says it (redacted). */
function failureMessage(err: unknown): string {
  let failure = asGitfsError(err);
  if (failure instanceof PreparationFailed && failure.cause instanceof GitfsError) failure = failure.cause;
  return redact(`${SUMMARIES[failure.kind]}: ${failure.message}`);
}

/**
 * Tells volumes' pods how their publishes go, as Events. Does nothing without a recorder (outside a
 * cluster) or without the pod's identity.
 */
export class VolumeEvents {
  constructor(private readonly recorder: EventRecorder | undefined) {}

  /** The events of one publish of `repository` at `ref` for `pod`, from now on. */
  publishing(pod: PodInfo, repository: string, ref: string | undefined): PublishEvents | undefined {
    if (!this.recorder || !pod.name || !pod.namespace) return undefined;
    const recorder = this.recorder;
    const subject = { name: pod.name, namespace: pod.namespace, uid: pod.uid };
    return new PublishEvents((type, reason, message) => recorder.record(subject, type, reason, message), repository, ref);
  }
}

/** One publish, told to its pod: preparing (repository, ref), then ready (commit, time, entries), failed (why), or slow (still preparing after 30 s, in which phase). */
export class PublishEvents {
  private readonly startedAt = Date.now();
  private readonly slow: NodeJS.Timeout;
  private preparation: Preparation | undefined;

  constructor(private readonly record: (type: EventType, reason: string, message: string) => void, repository: string, ref: string | undefined) {
    record('Normal', 'GitfsPreparing', `preparing ${repository} at ${ref ?? 'its default branch'}`);
    this.slow = setTimeout(() => {
      record('Warning', 'GitfsSlow', `still preparing after ${SLOW_AFTER_MS / 1000} s: ${this.preparation?.progress() ?? 'checking access to the repository'}`);
    }, SLOW_AFTER_MS);
    this.slow.unref();
  }

  /** The preparation the publish waits for, once known (the slow event names its phase). */
  preparing(preparation: Preparation): void {
    this.preparation = preparation;
  }

  failed(err: unknown): void {
    clearTimeout(this.slow);
    if (!NOT_FAILURES.has(asGitfsError(err).kind)) this.record('Warning', 'GitfsFailed', failureMessage(err));
  }

  /** Follows the published volume until its tree is served, or its preparation fails. */
  published(published: Published): void {
    const { preparation, resolved } = published;
    this.preparation = preparation;
    void preparation.gate.whenSettled().then((tree) => {
      if (!tree) return this.failed(preparation.failure);
      clearTimeout(this.slow);
      const seconds = ((Date.now() - this.startedAt) / 1000).toFixed(1);
      this.record('Normal', 'GitfsReady', `commit ${resolved.commit.slice(0, 12)} (${resolved.refName}) ready in ${seconds} s: ${tree.index.count.toLocaleString('en-US')} entries`);
    });
  }
}
