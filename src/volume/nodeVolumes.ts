import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { AlreadyExists, asGitfsError, Busy, InvalidArgument, VolumeNotFound } from '../errors/errors';
import { formatBytes } from '../config/byteSize';
import { TreeLimits } from '../config/nodeConfig';
import { checkWriteLimit } from '../mount/writableLayer';
import { Logger } from '../log/logger';
import { redact } from '../log/redact';
import { NodeMachinery } from '../prepare/nodeMachinery';
import { Published } from '../prepare/publisher';
import { TreeIndex } from '../tree/treeIndex';
import { volumeCredentials } from './volumeCredentials';
import { VolumeEvents } from './volumeEvents';
import { VolumeRecord, VolumeRecords } from './volumeRecords';
import { parseVolumeSpec, PodInfo, podInfoOf, VolumeSpec } from './volumeSpec';

export interface PublishVolumeRequest {
  volumeId: string;
  target: string;
  accessMode: string;
  readonly: boolean;
  /** A writer access mode published without readonly: the volume gets a writable layer of its own. */
  writable: boolean;
  attributes: Record<string, string>;
  secrets: Record<string, string>;
}

export interface VolumeStats {
  /** Sum of the commit's blob sizes (0 until sizes are known). */
  totalBytes: number;
  /** Bytes of the commit's blobs already in the node cache. */
  usedBytes: number;
  entries: number;
  /** Why the volume is not healthy, or undefined. */
  abnormal?: string;
}

/** One published volume, as `gitfs-csi status` shows it. */
export interface VolumeState {
  volumeId: string;
  target: string;
  /** namespace/name of the pod, when kubelet said. */
  pod?: string;
  repository: string;
  ref: string;
  commit: string;
  mode: 'read-only' | 'writable';
  /** "ready", "preparing (fetching for 3.1 s)" or "failed". */
  state: string;
  reason?: string;
}

export interface NodeVolumesOptions {
  /** Longest a `readiness: wait` publish takes, probe included, before answering "not yet" (kubelet retries). */
  publishWaitMs: number;
  /** A writable volume's write limit when it names none, and the most one may name. */
  writeLimit: { defaultBytes: number; maxBytes: number };
  /** Where pods are told how their volumes go (Kubernetes Events); none outside a cluster. */
  events?: VolumeEvents;
}

/**
 * The node's volumes as kubelet sees them: publish, unpublish and stats by volume id and
 * target path, idempotent across retries and restarts, one call per target at a time.
 */
export class NodeVolumes {
  private readonly inFlight = new Set<string>();
  /** Publications made by this process. */
  private readonly live = new Map<string, Published>();
  /** Targets restored after a restart: their old containers still hold a dead mount. */
  private readonly restarted = new Map<string, string>();

  private constructor(
    private readonly node: NodeMachinery,
    private readonly records: VolumeRecords,
    private readonly options: NodeVolumesOptions,
    private readonly log: Logger,
  ) {}

  /** Opens the node's records and re-mounts, in the background, what was published before a restart. */
  static async open(node: NodeMachinery, records: VolumeRecords, options: NodeVolumesOptions, log: Logger): Promise<{ volumes: NodeVolumes; recovered: Promise<void> }> {
    const volumes = new NodeVolumes(node, records, options, log);
    node.metrics?.readVolumesFrom(() => volumes.modes());
    return { volumes, recovered: volumes.recover() };
  }

  get count(): number {
    return this.records.all().length;
  }

  /** Every published volume as `gitfs-csi status` shows it: what it is, and whether it serves. */
  list(): VolumeState[] {
    return this.records.all().map((record) => {
      const preparation = this.live.get(record.target)?.preparation;
      const problem = this.restarted.get(record.target) ?? (preparation ? preparation.failure?.message : 'not mounted by this node plugin');
      return {
        volumeId: record.volumeId,
        target: record.target,
        pod: record.pod.name ? `${record.pod.namespace}/${record.pod.name}` : undefined,
        repository: redact(record.repository),
        ref: record.refName,
        commit: record.commit,
        mode: modeOf(record),
        state: problem ? 'failed' : preparation!.gate.state === 'ready' ? 'ready' : `preparing (${preparation!.progress()})`,
        ...(problem ? { reason: redact(problem) } : {}),
      };
    });
  }

  /** Published volumes by mode. */
  modes(): { readOnly: number; writable: number } {
    const all = this.records.all();
    const writable = all.filter((record) => modeOf(record) === 'writable').length;
    return { readOnly: all.length - writable, writable };
  }

  async publish(request: PublishVolumeRequest): Promise<void> {
    const target = resolve(request.target);
    await this.exclusively(request.volumeId, target, async () => {
      const spec = parseVolumeSpec(request.attributes, { allowFile: this.node.config.allowFile, where: 'volume_context' });
      const credentials = volumeCredentials(request.secrets, spec.remote);
      const pod = podInfoOf(request.attributes);
      const writeLimitBytes = request.writable ? this.writeLimitOf(spec.writeLimitBytes) : undefined;
      const limits = this.treeLimitsOf(spec);
      const fingerprint = fingerprintOf(request);
      const existing = this.records.get(target);
      if (existing && (existing.volumeId !== request.volumeId || existing.fingerprint !== fingerprint)) {
        throw new AlreadyExists(`target_path ${target} already holds volume ${existing.volumeId}, published with other arguments`);
      }
      const live = this.live.get(target);
      if (existing && live && live.preparation.phase !== 'failed' && !this.restarted.has(target)) return;

      const log = this.log.child({ volumeId: request.volumeId, pod: podLabel(pod), podUid: pod.uid, repository: spec.remote.display });
      const started = Date.now();
      const events = this.options.events?.publishing(pod, spec.remote.display, spec.ref);
      try {
        const published = await this.node.publisher.publish({
          repository: spec.remote.url, ref: spec.ref, commit: spec.commit, depth: spec.depth, credentials: credentials.http, ssh: credentials.ssh, target,
          readiness: spec.readiness, readyWaitMs: this.options.publishWaitMs, startedAt: started, log,
          writable: writeLimitBytes === undefined ? undefined : { limitBytes: writeLimitBytes }, git: spec.git,
          onPreparation: (preparation) => events?.preparing(preparation), limits,
        });
        await this.records.put({
          volumeId: request.volumeId, target, fingerprint, repository: spec.remote.url,
          refName: published.resolved.refName, commit: published.resolved.commit, tag: published.resolved.tag, depth: spec.depth, pod, writeLimitBytes, ...(spec.git ? {} : { git: false as const }),
        });
        this.live.set(target, published);
        this.restarted.delete(target);
        void published.preparation.gate.whenSettled().then((tree) => tree && this.node.metrics?.timeToReady.observe((Date.now() - started) / 1000));
        events?.published(published);
        log.info({ commit: published.resolved.commit, readiness: spec.readiness, phase: published.preparation.phase, ms: Date.now() - started, target }, 'volume published');
      } catch (err) {
        const failure = asGitfsError(err);
        events?.failed(failure);
        log.warn({ kind: failure.kind, err: failure, ms: Date.now() - started, target }, 'volume not published');
        throw failure;
      }
    });
  }

  async unpublish(volumeId: string, target: string): Promise<void> {
    const path = resolve(target);
    await this.exclusively(volumeId, path, async () => {
      const record = this.records.get(path);
      if (record && record.volumeId !== volumeId) throw new VolumeNotFound(`target_path ${path} holds volume ${record.volumeId}, not ${volumeId}`);
      await this.node.publisher.unpublish(path, { removeDir: true });
      await this.records.delete(path);
      this.live.delete(path);
      this.restarted.delete(path);
      this.log.info({ volumeId, target: path, pod: record ? podLabel(record.pod) : undefined }, 'volume unpublished');
    });
  }

  async stats(volumeId: string, volumePath: string): Promise<VolumeStats> {
    const path = resolve(volumePath);
    const record = this.records.get(path);
    if (!record || record.volumeId !== volumeId) throw new VolumeNotFound(`volume ${volumeId} is not published at ${path}`);
    const preparation = this.live.get(path)?.preparation;
    const index = preparation?.gate.value?.index;
    const abnormal = this.restarted.get(path) ?? preparation?.failure?.message ?? (await deadMountReason(path)) ?? (preparation ? undefined : 'the volume is not mounted by this node plugin; republish it');
    return {
      totalBytes: index?.totalBytes ?? 0,
      usedBytes: index ? this.hydratedBytes(index) : 0,
      entries: index?.count ?? 0,
      abnormal,
    };
  }

  private writeLimitOf(asked: number | undefined): number {
    const { defaultBytes, maxBytes } = this.options.writeLimit;
    return checkWriteLimit(asked ?? defaultBytes, 'volume_context["writeLimit"]', { bytes: maxBytes, name: '--max-write-limit' });
  }

  /** A volume's own tree limits: each at most the node's, which apply where the volume names none. */
  private treeLimitsOf(spec: VolumeSpec): Partial<TreeLimits> | undefined {
    const node = this.node.config.treeLimits;
    if (spec.maxTreeEntries !== undefined && spec.maxTreeEntries > node.maxEntries) {
      throw new InvalidArgument('volume_context["maxTreeEntries"]', `${spec.maxTreeEntries} is over this node's --max-tree-entries (${node.maxEntries})`);
    }
    if (spec.maxCommitBytes !== undefined && node.maxBytes !== undefined && spec.maxCommitBytes > node.maxBytes) {
      throw new InvalidArgument('volume_context["maxCommitBytes"]', `${formatBytes(spec.maxCommitBytes)} is over this node's --max-commit-bytes (${formatBytes(node.maxBytes)})`);
    }
    if (spec.maxTreeEntries === undefined && spec.maxCommitBytes === undefined) return undefined;
    return { maxEntries: spec.maxTreeEntries, maxBytes: spec.maxCommitBytes };
  }

  private hydratedBytes(index: TreeIndex): number {
    let bytes = 0;
    for (let entry = 0; entry < index.count; entry++) {
      if (index.isBlob(entry) && this.node.cache.has(index.oid(entry))) bytes += Math.max(0, index.size(entry));
    }
    return bytes;
  }

  /** One call per target at a time: a concurrent one is told to retry (ABORTED at the edge). */
  private async exclusively(volumeId: string, target: string, work: () => Promise<void>): Promise<void> {
    if (this.inFlight.has(target)) throw new Busy(`an operation on volume ${volumeId} at ${target} is already in progress; retry`);
    this.inFlight.add(target);
    try {
      await work();
    } finally {
      this.inFlight.delete(target);
    }
  }

  private async recover(): Promise<void> {
    for (const record of this.records.all()) {
      await this.exclusively(record.volumeId, record.target, async () => {
        const log = this.log.child({ volumeId: record.volumeId, pod: podLabel(record.pod), target: record.target });
        try {
          const published = await this.node.publisher.restore({
            repository: record.repository, refName: record.refName, commit: record.commit, tag: record.tag, depth: record.depth, target: record.target, readiness: 'gate',
            writable: record.writeLimitBytes === undefined ? undefined : { limitBytes: record.writeLimitBytes }, git: record.git,
          });
          this.live.set(record.target, published);
          // A mount taken over from the holder never stopped working; one mounted anew is not what running containers see.
          if (!published.treeMount.adopted) this.restarted.set(record.target, 'the node plugin restarted and its mounts were not kept: the volume was mounted again, but containers started before still see the old, dead mount; restart the pod');
          log.info({ commit: record.commit, keptMount: published.treeMount.adopted }, published.treeMount.adopted ? 'volume taken over after restart' : 'volume re-mounted after restart');
        } catch (err) {
          this.restarted.set(record.target, 'the node plugin restarted and could not mount the volume again; republish it');
          log.error({ err: asGitfsError(err) }, 'volume could not be re-mounted after restart');
        }
      }).catch(() => undefined);
    }
    await this.node.commits.releaseUnclaimedMounts().catch((err) => this.log.warn({ err: asGitfsError(err) }, 'tree mounts left by an earlier process could not be released'));
  }
}

function fingerprintOf(request: PublishVolumeRequest): string {
  const attributes = Object.entries(request.attributes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256').update(JSON.stringify([request.volumeId, request.accessMode, request.readonly, attributes])).digest('hex');
}

function podLabel(pod: PodInfo): string | undefined {
  return pod.name ? `${pod.namespace ?? ''}/${pod.name}` : undefined;
}

/** A FUSE server that died leaves "transport endpoint is not connected" behind. */
async function deadMountReason(path: string): Promise<string | undefined> {
  try {
    await stat(path);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOTCONN' ? 'the FUSE tree behind this volume is gone (transport endpoint is not connected); republish the volume' : `the volume path cannot be read: ${code}`;
  }
}

/** A volume with a write limit has a writable layer. */
function modeOf(record: VolumeRecord): VolumeState['mode'] {
  return record.writeLimitBytes === undefined ? 'read-only' : 'writable';
}
