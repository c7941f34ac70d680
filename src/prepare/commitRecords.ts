import { rmdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BlobCache } from '../cache/blobCache';
import { NodeConfig, treesDirOf } from '../config/nodeConfig';
import { MountedTree } from '../fuse/mountedTree';
import { ReadinessGate } from '../fuse/readinessGate';
import { ServingThreads } from '../fuse/servingThreads';
import { TreeFilesystem } from '../fuse/treeFilesystem';
import { RemoteAccess } from '../git/gitEnvironment';
import { GitView } from '../gitdir/refFiles';
import { ResolvedRef } from '../git/remoteRefs';
import { RepositoryStore } from '../git/repositoryStore';
import { UploadPackClient } from '../git/uploadPackClient';
import { Hydrator } from '../hydrate/hydrator';
import { Logger } from '../log/logger';
import type { NodeMetrics } from '../metrics/nodeMetrics';
import { detachAll } from '../mount/mountTable';
import { TreeMount } from '../mount/treeMount';
import { CommitRecord } from './commitRecord';
import { collectWhenIdle } from './idleCollection';
import { Preparation } from './preparation';
import { UnpackThread } from './unpackThread';

/** The node-wide machinery every commit's record is built on. */
export interface RecordMachinery {
  config: NodeConfig;
  cache: BlobCache;
  hydrator: Hydrator;
  unpacker: UnpackThread;
  threads: ServingThreads;
  log: Logger;
  metrics?: NodeMetrics;
}

/** What a consumer brings to a commit: where it comes from, and how to fetch it should it need preparing. */
export interface CommitRequest {
  store: RepositoryStore;
  access: RemoteAccess;
  resolved: ResolvedRef;
  /** Our own protocol-v2 client for this remote, when it has one. */
  client: UploadPackClient | undefined;
  depth: number | undefined;
  /** A restore after a restart, without the volume's credentials. */
  restoring: boolean;
  /** Mount the tree at this consumer's own mountpoint instead of under the trees directory (a user's mount, which cannot bind). */
  mountAt?: string;
  /** With `mountAt`: the consumer's view of `.git`, which the tree then serves itself. */
  ownView?: GitView;
  /** The consumer's logger: a preparation it starts logs with it. */
  log?: Logger;
}

/** The node's commits: one record per (repository store, commit), kept while something holds it. */
export class CommitRecords {
  private readonly records = new Map<string, CommitRecord>();

  constructor(private readonly machinery: RecordMachinery) {}

  /** How many commits the node holds (in use or in their grace period). */
  get size(): number {
    return this.records.size;
  }

  /** Every record, in use or in its grace period. */
  all(): CommitRecord[] {
    return [...this.records.values()];
  }

  /** How many commits are mounted now. */
  get mounted(): number {
    let mounted = 0;
    for (const record of this.records.values()) if (record.hasMount) mounted++;
    return mounted;
  }

  /**
   * The commit's record with one more consumer (`release` it when done): created, found warm, or
   * given a fresh preparation when its last one failed or was a restore's.
   */
  async acquire(request: CommitRequest): Promise<CommitRecord> {
    const key = `${request.store.key}@${request.resolved.commit}`;
    let record = this.records.get(key);
    // A record being dropped goes first: its mount and the next one's share a directory.
    while (record?.leaving) {
      await record.leaving;
      record = this.records.get(key);
    }
    if (!record) {
      record = this.newRecord(key, request);
      this.records.set(key, record);
    }
    record.retain();
    record.prepare(request.restoring, () => this.newPreparation(request));
    return record;
  }

  /**
   * Lets go of the mounts the holder keeps that no record claimed (tree mounts an earlier process
   * kept for their grace period, or whose restore failed): they are unmounted, nothing serves them any more.
   */
  async releaseUnclaimedMounts(): Promise<void> {
    const holder = this.machinery.config.fuseHolder;
    if (!holder) return;
    const claimed = new Set([...this.records.values()].filter((record) => record.hasMount).map((record) => record.dir));
    for (const dir of holder.list()) {
      if (claimed.has(dir)) continue;
      holder.drop(dir);
      await detachAll(dir);
      await rmdir(dir).catch(() => undefined);
      this.machinery.log.info({ dir }, 'unmounted a tree mount no volume claimed after the restart');
    }
  }

  /**
   * Drops every record now (shutdown); with `handOver`, the mounts of records in use are left to the
   * holder for the next process. Idle ones (in their grace period) are unmounted: no successor claims
   * them, and a holder outliving the plugin (an uninstall) would keep a mount that nobody serves.
   */
  async close(options: { handOver?: boolean; drainMs?: number } = {}): Promise<void> {
    await Promise.all([...this.records.values()].map((record) => record.drop(record.inUse ? options : { drainMs: options.drainMs })));
  }

  private newRecord(key: string, { access, resolved, mountAt, ownView }: CommitRequest): CommitRecord {
    const { config, hydrator, threads, log } = this.machinery;
    const fuseLog = log.child({ component: 'fuse' });
    const label = `${access.remote.display}@${resolved.commit.slice(0, 12)}`;
    const dir = mountAt ? resolve(mountAt) : join(treesDirOf(config), access.remote.storeName, resolved.commit);
    const newMount = (gate: ReadinessGate<MountedTree>) => {
      const filesystem = new TreeFilesystem(gate, hydrator, config.filesystem, fuseLog.child({ commit: resolved.commit }), ownView);
      return new TreeMount(dir, filesystem, label, { threads, kernelProfile: config.kernelProfile, holder: config.fuseHolder, log: fuseLog }, { atTarget: mountAt !== undefined });
    };
    const forget = (record: CommitRecord) => {
      if (this.records.get(key) !== record) return;
      this.records.delete(key);
      if (this.records.size === 0) collectWhenIdle();
    };
    return new CommitRecord(key, dir, config.treeMountGraceMs, newMount, forget, fuseLog);
  }

  private newPreparation({ store, access, resolved, client, depth, log }: CommitRequest): Preparation {
    const { config, cache, unpacker, metrics } = this.machinery;
    const preparationLog = (log ?? this.machinery.log.child({ repository: access.remote.display })).child({ commit: resolved.commit });
    const preparation = new Preparation(store, access, resolved, client, depth, cache, unpacker, { fetchMs: config.fetchTimeoutMs, maxEntries: config.treeLimits.maxEntries }, preparationLog);
    metrics?.watchPreparation(preparation);
    return preparation;
  }
}
