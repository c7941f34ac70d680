import { mkdir } from 'node:fs/promises';
import { BlobCache } from '../cache/blobCache';
import { blobsDirOf, NodeConfig, storesDirOf, treesDirOf } from '../config/nodeConfig';
import { ServingThreads } from '../fuse/servingThreads';
import { RepositoryStores } from '../git/repositoryStores';
import { SshKeyring } from '../git/sshKeyring';
import { Hydrator } from '../hydrate/hydrator';
import { receivedBytes } from '../git/receivedBytes';
import { LATENCY_BOUNDS_SECONDS } from '../fuse/requestStats';
import { Logger } from '../log/logger';
// A type only: `gitfs-csi mount`, which has no metrics, never loads prom-client (docs/benchmarks.md).
import type { NodeMetrics } from '../metrics/nodeMetrics';
import { removeEmptyDirectories } from '../mount/emptyDirectories';
import { CommitRecords } from './commitRecords';
import { Publisher } from './publisher';
import { UnpackThread } from './unpackThread';

/**
 * The machinery of one node (the CSI node plugin, or one `gitfs-csi mount`), built in one
 * place: the blob cache, hydrator, repository stores, SSH keyring, unpacking and serving threads,
 * the commits' records, and the publisher over them; `close` takes it down in order.
 */
export class NodeMachinery {
  readonly hydrator: Hydrator;
  readonly stores: RepositoryStores;
  readonly commits: CommitRecords;
  readonly publisher: Publisher;
  private readonly keyring: SshKeyring;
  private readonly unpacker: UnpackThread;
  private readonly threads: ServingThreads;
  private closed: Promise<void> | undefined;

  private constructor(readonly config: NodeConfig, readonly cache: BlobCache, log: Logger, readonly metrics: NodeMetrics | undefined) {
    this.hydrator = new Hydrator(cache, config.hydrator, log.child({ component: 'hydrator' }), metrics?.hydration);
    this.stores = new RepositoryStores(storesDirOf(config), { commandMs: config.commandTimeoutMs, fetchMs: config.fetchTimeoutMs });
    this.keyring = new SshKeyring(config.secretsDir);
    this.unpacker = new UnpackThread(cache);
    this.threads = new ServingThreads(cache.servable, log.child({ component: 'fuse' }));
    this.commits = new CommitRecords({ config, cache, hydrator: this.hydrator, unpacker: this.unpacker, threads: this.threads, log, metrics });
    this.publisher = new Publisher(config, this.stores, this.keyring, this.commits, log);
    metrics?.readFrom({
      hydration: () => this.hydrator.stats(),
      cache: () => cache.stats(),
      fuse: this.threads.stats,
      fuseBounds: LATENCY_BOUNDS_SECONDS,
      treeMounts: () => this.commits.mounted,
      receivedBytes,
    });
  }

  /** File reads answered from the cache, and those that waited for their blob. */
  readStats(): { hits: number; misses: number } {
    return this.threads.stats.reads();
  }

  /** With `metrics`, everything the node does is recorded there (the node plugin's). */
  static async open(config: NodeConfig, log: Logger, metrics?: NodeMetrics): Promise<NodeMachinery> {
    await mkdir(config.stateDir, { recursive: true });
    await mkdir(storesDirOf(config), { recursive: true });
    const cache = await BlobCache.open(blobsDirOf(config), config.cacheMaxBytes, log.child({ component: 'cache' }));
    return new NodeMachinery(config, cache, log, metrics);
  }

  /**
   * Stops serving, once. With `keepPublications`, bind mounts stay where they are and tree mounts
   * are left to the holder (where there is one): a node plugin shutting down leaves kubelet's
   * targets for the next start.
   */
  close(options: { keepPublications?: boolean } = {}): Promise<void> {
    this.closed ??= (async () => {
      await this.publisher.close(options);
      // Mounts first: a handover answers the requests already taken, and a read among them may be
      // waiting for its blob, which only a running hydrator (and unpacking thread) brings.
      await this.commits.close({ handOver: options.keepPublications, drainMs: this.config.filesystem.readWaitMs });
      this.hydrator.close();
      await this.unpacker.close();
      this.cache.close();
      await this.threads.close();
      this.stores.close();
      await this.keyring.clear();
      await removeEmptyDirectories(treesDirOf(this.config));
    })();
    return this.closed;
  }
}
