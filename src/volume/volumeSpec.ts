import { InvalidArgument } from '../errors/errors';
import { isCommitId, validateRef } from '../git/remoteRefs';
import { RemoteUrl } from '../git/remoteUrl';
import { parseByteSize } from '../config/byteSize';
import { redact } from '../log/redact';

export type Readiness = 'wait' | 'gate';

/** What a volume asks for, from PV/inline `volumeAttributes` or StorageClass `parameters`. */
export interface VolumeSpec {
  remote: RemoteUrl;
  /** Branch, tag, full ref or commit id; undefined means the remote's HEAD. */
  ref?: string;
  /** A commit the ref must resolve to exactly. */
  commit?: string;
  /** History depth to fetch; undefined means the whole history. */
  depth?: number;
  readiness: Readiness;
  /** A writable publish's most bytes of writes; undefined means the node's default. */
  writeLimitBytes?: number;
  /** Whether the volume has a `.git` (attribute `git`, default "true"). */
  git: boolean;
  /** The most entries the commit's tree may have (attribute `maxTreeEntries`; at most the node's). */
  maxTreeEntries?: number;
  /** The most bytes the commit's files may hold together (attribute `maxCommitBytes`; at most the node's). */
  maxCommitBytes?: number;
}

/** The pod a volume is published for, from the keys kubelet adds (podInfoOnMount). */
export interface PodInfo {
  name?: string;
  namespace?: string;
  uid?: string;
  serviceAccount?: string;
  ephemeral?: boolean;
}

export const DEFAULT_DEPTH = 1;

const KUBELET_PREFIX = 'csi.storage.k8s.io/';
/** Added by csi-provisioner to the context of volumes it created. */
const PROVISIONER_KEYS = new Set(['storage.kubernetes.io/csiProvisionerIdentity']);
/** The attributes a volume is made of. */
export const VOLUME_ATTRIBUTE_KEYS = new Set(['repository', 'ref', 'commit', 'depth', 'readiness', 'writeLimit', 'git', 'maxTreeEntries', 'maxCommitBytes']);

/**
 * Parses volume attributes. `where` names the map in errors ("volume_context",
 * "parameters"); every error names the key and shows the value redacted.
 */
export function parseVolumeSpec(attributes: Record<string, string>, options: { allowFile: boolean; where: string }): VolumeSpec {
  const field = (key: string) => `${options.where}["${redact(key).slice(0, 100)}"]`;
  for (const key of Object.keys(attributes)) {
    if (!VOLUME_ATTRIBUTE_KEYS.has(key) && !key.startsWith(KUBELET_PREFIX) && !PROVISIONER_KEYS.has(key)) {
      throw new InvalidArgument(field(key), `unknown key; expected ${[...VOLUME_ATTRIBUTE_KEYS].join(', ')}`);
    }
  }
  const repository = attributes.repository;
  if (repository === undefined || repository === '') throw new InvalidArgument(field('repository'), 'is required: the git URL to mount');
  const remote = RemoteUrl.parse(repository, { allowFile: options.allowFile, field: field('repository') });
  if (remote.credentials) {
    throw new InvalidArgument(field('repository'), `${remote.display} carries credentials in the URL; use a nodePublishSecretRef or the node's own credentials`);
  }

  const ref = optional(attributes.ref);
  if (ref !== undefined) validateRef(ref, field('ref'));
  const commit = optional(attributes.commit)?.toLowerCase();
  if (commit !== undefined && !isCommitId(commit)) {
    throw new InvalidArgument(field('commit'), `"${redact(commit).slice(0, 100)}" is not a full commit id (40 or 64 hex digits)`);
  }

  let depth: number | undefined = DEFAULT_DEPTH;
  const depthText = optional(attributes.depth);
  if (depthText !== undefined) {
    if (!/^\d{1,9}$/.test(depthText)) throw new InvalidArgument(field('depth'), `"${redact(depthText).slice(0, 100)}" is not a non-negative integer (0 = whole history)`);
    depth = Number(depthText) === 0 ? undefined : Number(depthText);
  }

  const readiness = optional(attributes.readiness) ?? 'wait';
  if (readiness !== 'wait' && readiness !== 'gate') {
    throw new InvalidArgument(field('readiness'), `"${redact(readiness).slice(0, 100)}" is not "wait" or "gate"`);
  }
  const writeLimitText = optional(attributes.writeLimit);
  const writeLimitBytes = writeLimitText === undefined ? undefined : parseByteSize(writeLimitText, field('writeLimit'));
  const git = optional(attributes.git) ?? 'true';
  if (git !== 'true' && git !== 'false') throw new InvalidArgument(field('git'), `"${redact(git).slice(0, 100)}" is not "true" or "false"`);
  const maxEntriesText = optional(attributes.maxTreeEntries);
  if (maxEntriesText !== undefined && !/^[1-9]\d{0,9}$/.test(maxEntriesText)) {
    throw new InvalidArgument(field('maxTreeEntries'), `"${redact(maxEntriesText).slice(0, 100)}" is not a positive integer`);
  }
  const maxBytesText = optional(attributes.maxCommitBytes);
  const maxCommitBytes = maxBytesText === undefined ? undefined : parseByteSize(maxBytesText, field('maxCommitBytes'));
  return { remote, ref: ref ?? commit, commit, depth, readiness, writeLimitBytes, git: git === 'true', maxTreeEntries: maxEntriesText === undefined ? undefined : Number(maxEntriesText), maxCommitBytes };
}

export function podInfoOf(attributes: Record<string, string>): PodInfo {
  const get = (key: string) => optional(attributes[KUBELET_PREFIX + key]);
  const ephemeral = get('ephemeral');
  return {
    name: get('pod.name'),
    namespace: get('pod.namespace'),
    uid: get('pod.uid'),
    serviceAccount: get('serviceAccount.name'),
    ephemeral: ephemeral === undefined ? undefined : ephemeral === 'true',
  };
}

function optional(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
