import { mkdir, rmdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BlobCache } from '../cache/blobCache';
import { blobsDirOf, NodeConfig, storesDirOf, treesDirOf } from '../config/nodeConfig';
import { RemoteAccess } from '../git/gitEnvironment';
import { resolveRemoteRef, ResolvedRef, validateRef } from '../git/remoteRefs';
import { HttpCredentials, RemoteUrl } from '../git/remoteUrl';
import { CommitMismatch, NotReady } from '../errors/errors';
import { RepositoryStores } from '../git/repositoryStores';
import { UploadPackClient, uploadPackClientFor } from '../git/uploadPackClient';
import { SshIdentity, SshKeyring } from '../git/sshKeyring';
import { TreeFilesystem } from '../fuse/treeFilesystem';
import { Hydrator } from '../hydrate/hydrator';
import { Logger } from '../log/logger';
import { removeEmptyDirectories } from '../mount/emptyDirectories';
import { detachAll } from '../mount/mountTable';
import { publish, unpublish } from '../mount/publication';
import { TreeMount } from '../mount/treeMount';
import { ServingThreads } from '../fuse/servingThreads';
import { TreeMounts } from '../mount/treeMounts';
import { Preparation } from './preparation';
import { UnpackThread } from './unpackThread';

export interface PublishRequest {
  repository: string;
  ref?: string;
  /** A commit the ref must resolve to exactly. */
  commit?: string;
  depth?: number;
  credentials?: HttpCredentials;
  /** The volume's own SSH key, for ssh repositories. */
  ssh?: SshIdentity;
  target: string;
  /**
   * 'gate' (default) binds the target at once and file operations wait at the readiness gate;
   * 'wait' binds only once the tree is ready, failing with NotReady once `readyWaitMs` have
   * passed since the publish began (the access probe counts too).
   */
  readiness?: 'wait' | 'gate';
  readyWaitMs?: number;
  /** When the caller's clock for `readyWaitMs` started (default: when publish() was called). */
  startedAt?: number;
  /** The caller's logger (volume id, pod, repository): a preparation this publish starts logs its steps with it. */
  log?: Logger;
}

export interface Published {
  target: string;
  remote: RemoteUrl;
  resolved: ResolvedRef;
  preparation: Preparation;
  treeMount: TreeMount;
  treeKey: string;
}

/**
 * The node's volume machinery in one place: probe access and resolve the ref, attach to
 * (or start) the commit's preparation, share its one tree mount, and bind it read-only at
 * the consumer's target. Each publish checks access itself, even for a commit already here.
 */
export class Publisher {
  readonly hydrator: Hydrator;
  readonly stores: RepositoryStores;
  readonly treeMounts: TreeMounts;
  private readonly unpacker: UnpackThread;
  readonly threads: ServingThreads;
  private readonly preparations = new Map<string, Preparation>();
  private readonly filesystems = new Map<string, TreeFilesystem>();
  private readonly published = new Map<string, Published>();
  private readonly keyring: SshKeyring;
  /** Commits re-mounted after a restart, whose preparation has no volume's credentials. */
  private readonly restored = new Set<string>();

  private constructor(readonly config: NodeConfig, readonly cache: BlobCache, private readonly log: Logger) {
    this.hydrator = new Hydrator(cache, config.hydrator, log.child({ component: 'hydrator' }));
    this.stores = new RepositoryStores(storesDirOf(config), { commandMs: config.commandTimeoutMs, fetchMs: config.fetchTimeoutMs });
    this.treeMounts = new TreeMounts(config.treeMountGraceMs);
    this.keyring = new SshKeyring(config.secretsDir);
    this.unpacker = new UnpackThread(cache);
    this.threads = new ServingThreads(cache.servable, log.child({ component: 'fuse' }));
  }

  static async create(config: NodeConfig, log: Logger): Promise<Publisher> {
    await mkdir(config.stateDir, { recursive: true });
    await mkdir(storesDirOf(config), { recursive: true });
    const cache = await BlobCache.open(blobsDirOf(config), config.cacheMaxBytes, log.child({ component: 'cache' }));
    return new Publisher(config, cache, log);
  }

  /** Checks access and resolves the ref: the cheap first step of every publish. */
  async probe(request: Pick<PublishRequest, 'repository' | 'ref' | 'credentials' | 'ssh'>): Promise<{ access: RemoteAccess; resolved: ResolvedRef }> {
    const access = await this.accessFor(request);
    return { access, resolved: await resolveRemoteRef(access, request.ref, this.config.commandTimeoutMs, uploadPackClientFor(access, this.config.commandTimeoutMs)) };
  }

  /** Mounts the commit's tree (gated until ready) at `request.target`; preparation continues in the background. */
  async publish(request: PublishRequest): Promise<Published> {
    request = { ...request, startedAt: request.startedAt ?? Date.now() };
    const access = await this.accessFor(request);
    validateRef(request.ref ?? 'HEAD');
    const client = uploadPackClientFor(access, this.config.commandTimeoutMs);
    // With git's client, a remote new to this node is fetched while the probe runs (ours needs
    // no such head start); either way nothing is served before the probe passes.
    if (!client) this.stores.forRemote(access.remote).fetchFirst(access, request.ref, request.depth);
    const resolved = await resolveRemoteRef(access, request.ref, this.config.commandTimeoutMs, client);
    if (request.commit && resolved.commit !== request.commit) {
      throw new CommitMismatch(access.remote.display, request.ref ?? 'HEAD', resolved.commit, request.commit);
    }
    return this.attach(access, resolved, request, false, client);
  }

  /**
   * Re-mounts a commit published before a restart from what the store already holds, without
   * a probe (the volume's credentials are gone with the old process). Blobs not yet cached are
   * fetched with the node's ambient credentials only.
   */
  async restore(request: PublishRequest & { commit: string; refName: string }): Promise<Published> {
    const access = await this.accessFor({ repository: request.repository });
    return this.attach(access, { commit: request.commit, refName: request.refName }, request, true, uploadPackClientFor(access, this.config.commandTimeoutMs));
  }

  private async attach(access: RemoteAccess, resolved: ResolvedRef, request: PublishRequest, restoring = false, client?: UploadPackClient): Promise<Published> {
    const store = this.stores.forRemote(access.remote);
    const treeKey = `${store.key}@${resolved.commit}`;
    // A restored preparation fetches with no credentials; the first real publish replaces it with one that has them.
    const replace = restoring ? false : this.restored.delete(treeKey);
    if (restoring && !this.preparations.has(treeKey)) this.restored.add(treeKey);
    const preparation = this.preparationFor(treeKey, replace, () =>
      new Preparation(store, access, resolved, client, request.depth, this.cache, this.unpacker, this.config.fetchTimeoutMs,
        (request.log ?? this.log.child({ repository: access.remote.display })).child({ commit: resolved.commit })),
    );
    void preparation.start();
    if (request.readiness === 'wait') {
      const waited = Date.now() - (request.startedAt ?? Date.now());
      await this.waitUntilReady(preparation, Math.max(0, (request.readyWaitMs ?? this.config.fetchTimeoutMs) - waited));
    }
    const treeMount = await this.treeMounts.acquire(treeKey, () => {
      const filesystem = new TreeFilesystem(preparation.gate, this.hydrator, this.config.filesystem, this.log.child({ component: 'fuse', commit: resolved.commit }));
      this.filesystems.set(treeKey, filesystem);
      const atTarget = this.config.mountAtTarget === true;
      const dir = atTarget ? resolve(request.target) : join(treesDirOf(this.config), access.remote.storeName, resolved.commit);
      return new TreeMount(dir, filesystem, `${access.remote.display}@${resolved.commit.slice(0, 12)}`, { threads: this.threads, kernelProfile: this.config.kernelProfile, holder: this.config.fuseHolder, log: this.log.child({ component: 'fuse' }) }, { atTarget });
    });
    this.filesystems.get(treeKey)?.useGate(preparation.gate);
    try {
      if (!this.config.mountAtTarget) await publish(treeMount.dir, request.target);
    } catch (err) {
      await this.treeMounts.release(treeKey);
      throw err;
    }
    const published: Published = { target: request.target, remote: access.remote, resolved, preparation, treeMount, treeKey };
    // A target published again (a republish after a restart or failure) gives up its old reference.
    const previous = this.published.get(request.target);
    this.published.set(request.target, published);
    if (previous) await this.treeMounts.release(previous.treeKey);
    this.log.info({ repository: access.remote.display, ref: resolved.refName, commit: resolved.commit, target: request.target }, 'published');
    return published;
  }

  /**
   * Lets go of the mounts the holder keeps that no restored volume claimed (tree mounts an earlier
   * process kept for their grace period): they are unmounted, nothing serves them any more.
   */
  async releaseUnclaimedMounts(): Promise<void> {
    const holder = this.config.fuseHolder;
    if (!holder) return;
    const claimed = new Set([...this.published.values()].map((p) => p.treeMount.dir));
    for (const dir of holder.list()) {
      if (claimed.has(dir)) continue;
      holder.drop(dir);
      await detachAll(dir);
      await rmdir(dir).catch(() => undefined);
      this.log.info({ dir }, 'unmounted a tree mount no volume claimed after the restart');
    }
  }

  async unpublish(target: string, options: { removeDir: boolean } = { removeDir: false }): Promise<void> {
    if (!this.config.mountAtTarget) await unpublish(target, options);
    const published = this.published.get(target);
    if (!published) return;
    this.published.delete(target);
    await this.treeMounts.release(published.treeKey);
  }

  /**
   * Stops serving. With `keepPublications`, bind mounts stay where they are (a node plugin
   * shutting down leaves kubelet's targets for the next start to re-mount).
   */
  async close(options: { keepPublications?: boolean } = {}): Promise<void> {
    if (!options.keepPublications) for (const target of [...this.published.keys()]) await this.unpublish(target).catch(() => undefined);
    this.published.clear();
    this.hydrator.close();
    await this.unpacker.close();
    // Kept publications keep their tree mounts too, left to the holder (where there is one) for the next start.
    await this.treeMounts.closeAll({ handOver: options.keepPublications, drainMs: this.config.filesystem.readWaitMs });
    await this.threads.close();
    this.stores.close();
    await this.keyring.clear();
    await removeEmptyDirectories(treesDirOf(this.config));
  }

  private async accessFor(request: Pick<PublishRequest, 'repository' | 'credentials' | 'ssh'>): Promise<RemoteAccess> {
    const remote = RemoteUrl.parse(request.repository, { allowFile: this.config.allowFile });
    const ssh = request.ssh ? await this.keyring.files(request.ssh) : undefined;
    return { remote, credentials: request.credentials, ssh, allowFile: this.config.allowFile };
  }

  /** Waits at the gate; a timeout says how far preparation got, so a retry can be told apart from a hang. */
  private async waitUntilReady(preparation: Preparation, timeoutMs: number): Promise<void> {
    try {
      await preparation.gate.wait(timeoutMs);
    } catch (err) {
      if (err instanceof NotReady) throw new NotReady(`${preparation.gate.description} is still ${preparation.progress()}; preparation continues, retry`);
      throw err;
    }
  }

  /** The running or finished preparation of a commit; a failed one (or one to `replace`) is started afresh. */
  private preparationFor(key: string, replace: boolean, create: () => Preparation): Preparation {
    const existing = this.preparations.get(key);
    if (existing && existing.phase !== 'failed' && !replace) return existing;
    const preparation = create();
    this.preparations.set(key, preparation);
    return preparation;
  }
}
