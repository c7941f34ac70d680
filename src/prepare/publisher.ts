import { join } from 'node:path';
import { layersDirOf, NodeConfig, TreeLimits, viewsDirOf } from '../config/nodeConfig';
import { RemoteAccess } from '../git/gitEnvironment';
import { resolveRemoteRef, ResolvedRef, validateRef } from '../git/remoteRefs';
import { admissionOf } from '../git/remoteAddresses';
import { HttpCredentials, RemoteUrl } from '../git/remoteUrl';
import { CommitMismatch, InvalidArgument, NotReady } from '../errors/errors';
import { RepositoryStores } from '../git/repositoryStores';
import { UploadPackClient, uploadPackClientFor } from '../git/uploadPackClient';
import { SshIdentity, SshKeyring } from '../git/sshKeyring';
import { Logger } from '../log/logger';
import { viewDirFor } from '../mount/gitView';
import { publish, unpublish } from '../mount/publication';
import { GitView, refFilesOf } from '../gitdir/refFiles';
import { MOUNTS_AS_USER, TreeMount } from '../mount/treeMount';
import { LayerSpares } from '../mount/layerSpares';
import { layerDirFor, mountWritable, prepareLayer, removeWritable } from '../mount/writableLayer';
import { CommitRecord } from './commitRecord';
import { CommitRecords } from './commitRecords';
import { Preparation } from './preparation';
import { checkTreeLimits, VolumeLimits } from './treeLimits';

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
  /** A writable volume: its own layer over the shared tree, holding at most this many bytes of writes. */
  writable?: { limitBytes: number };
  /** false: the volume has no `.git` (default: it has one, naming the ref it asked for). */
  git?: boolean;
  /** Told the commit's preparation as soon as the publish has it (before waiting for it). */
  onPreparation?: (preparation: Preparation) => void;
  /** The volume's own limits, at most the node's: checked before its target is mounted. */
  limits?: Partial<TreeLimits>;
}

export interface Published {
  target: string;
  remote: RemoteUrl;
  resolved: ResolvedRef;
  preparation: Preparation;
  treeMount: TreeMount;
  /** The commit's record, which this publication holds until it is unpublished. */
  record: CommitRecord;
}

/**
 * What the volume shows of `.git` beyond its commit's tree mount (whose HEAD is the commit,
 * detached): none at all, or the ref it asked for; undefined when there is nothing to add.
 */
function gitViewOf(request: PublishRequest, resolved: ResolvedRef): GitView | undefined {
  if (request.git === false) return 'no-git';
  const refs = refFilesOf(resolved.commit, resolved.refName, resolved.tag);
  return refs.packedRefs ? { refs } : undefined;
}

/**
 * Publishes commits at consumers' targets: probe access and resolve the ref, attach to the
 * commit's record (which prepares and mounts it), and bind its tree read-only at the target.
 * Each publish checks access itself, even for a commit already here.
 */
export class Publisher {
  private readonly published = new Map<string, Published>();
  private readonly spares: LayerSpares;

  constructor(
    readonly config: NodeConfig,
    private readonly stores: RepositoryStores,
    private readonly keyring: SshKeyring,
    private readonly commits: CommitRecords,
    private readonly log: Logger,
  ) {
    this.spares = new LayerSpares(join(layersDirOf(config), 'spares'));
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
    // A writable layer needs nothing of the remote or the tree: it is made while they are probed and prepared.
    const layer = this.startLayer(request);
    try {
      const client = uploadPackClientFor(access, this.config.commandTimeoutMs);
      // With git's client, a remote new to this node is fetched while the probe runs (ours needs
      // no such head start); either way nothing is served before the probe passes.
      if (!client) this.stores.forRemote(access.remote).fetchFirst(access, request.ref, request.depth);
      const resolved = await resolveRemoteRef(access, request.ref, this.config.commandTimeoutMs, client);
      if (request.commit && resolved.commit !== request.commit) {
        throw new CommitMismatch(access.remote.display, request.ref ?? 'HEAD', resolved.commit, request.commit);
      }
      return await this.attach(access, resolved, request, layer, false, client);
    } catch (err) {
      // A layer made for this publish goes with it; one that a published volume writes in stays.
      if (layer && !this.published.has(request.target)) {
        await layer.catch(() => undefined);
        await removeWritable(request.target, this.layerDirOf(request.target)).catch(() => undefined);
      }
      throw err;
    }
  }

  /**
   * Re-mounts a commit published before a restart from what the store already holds, without
   * a probe (the volume's credentials are gone with the old process). Blobs not yet cached are
   * fetched with the node's ambient credentials only.
   */
  async restore(request: PublishRequest & ResolvedRef): Promise<Published> {
    const access = await this.accessFor({ repository: request.repository });
    // Its writable layer is mounted again as it was: the writes are kept, even if this fails.
    return this.attach(access, { commit: request.commit, refName: request.refName, tag: request.tag }, request, this.startLayer(request), true, uploadPackClientFor(access, this.config.commandTimeoutMs));
  }

  /** Keeps a formatted layer of this size ready, so the first writable publish that asks for it need not format one. */
  keepSpareLayer(limitBytes: number): void {
    if (!MOUNTS_AS_USER) this.spares.replenish(limitBytes);
  }

  private startLayer(request: PublishRequest): Promise<void> | undefined {
    if (!request.writable) return undefined;
    if (MOUNTS_AS_USER) throw new InvalidArgument('writable', 'needs root: a writable layer is a kernel overlayfs mount');
    const layer = prepareLayer(this.layerDirOf(request.target), request.writable.limitBytes, this.spares);
    layer.catch(() => undefined); // awaited in attach, or by the cleanup
    return layer;
  }

  private async attach(access: RemoteAccess, resolved: ResolvedRef, request: PublishRequest, layer: Promise<void> | undefined, restoring: boolean, client?: UploadPackClient): Promise<Published> {
    const store = this.stores.forRemote(access.remote);
    // A user's mount has no bind mounts: the tree is mounted at the target itself.
    const mountAt = MOUNTS_AS_USER ? request.target : undefined;
    const git = gitViewOf(request, resolved);
    // A mount of its own serves the consumer's view of .git itself.
    const record = await this.commits.acquire({ store, access, resolved, client, depth: request.depth, restoring, mountAt, ownView: mountAt ? git : undefined, log: request.log });
    request.onPreparation?.(record.preparation);
    let treeMount: TreeMount;
    // The tree is mounted while it is prepared (its operations wait at the readiness gate), so a
    // publish that waits for ready has only its own mount left to make once the tree is.
    const mounting = record.mount();
    mounting.catch(() => undefined);
    try {
      // An overlay mounts over a tree not ready yet as a bind does (its root is there): only "wait"
      // waits, and a publish with limits to check against the tree (a restored volume passed them).
      const limits = restoring ? undefined : this.limitsOf(request);
      if (request.readiness === 'wait' || limits) {
        const remainingMs = () => Math.max(0, (request.readyWaitMs ?? this.config.fetchTimeoutMs) - (Date.now() - (request.startedAt ?? Date.now())));
        await this.waitUntilReady(record.preparation, remainingMs());
        if (limits) await checkTreeLimits(record.preparation, limits, remainingMs());
      }
      treeMount = await mounting;
      const tag = resolved.tag;
      if (tag && git !== 'no-git') treeMount.filesystem.tags.add(tag, () => store.tagObject(access, { ...resolved, tag }));
      // An overlay left at the target is over a live tree if this process made it or the tree was taken over.
      const keepExisting = this.published.has(request.target) || treeMount.adopted;
      if (request.writable) {
        await layer;
        await mountWritable(treeMount.dir, request.target, this.layerDirOf(request.target), { keepExisting, git });
      } else if (!mountAt) await publish(treeMount.dir, request.target, { keepExisting, view: git && { dir: this.viewDirOf(request.target), git } });
    } catch (err) {
      await record.release();
      throw err;
    }
    const published: Published = { target: request.target, remote: access.remote, resolved, preparation: record.preparation, treeMount, record };
    // A target published again (a republish after a restart or failure) gives up its old hold.
    const previous = this.published.get(request.target);
    this.published.set(request.target, published);
    if (previous) await previous.record.release();
    this.log.info({ repository: access.remote.display, ref: resolved.refName, commit: resolved.commit, target: request.target }, 'published');
    return published;
  }

  /** Takes the volume off `target`; a writable volume's writes go with it. */
  async unpublish(target: string, options: { removeDir: boolean } = { removeDir: false }): Promise<void> {
    if (!MOUNTS_AS_USER) {
      await removeWritable(target, this.layerDirOf(target));
      await unpublish(target, { ...options, viewDir: this.viewDirOf(target) });
    }
    const published = this.published.get(target);
    if (!published) return;
    this.published.delete(target);
    await published.record.release();
  }

  /**
   * Unpublishes every target; with `keepPublications`, only forgets them and leaves the bind
   * mounts where they are (a node plugin shutting down leaves kubelet's targets for the next start).
   */
  async close(options: { keepPublications?: boolean } = {}): Promise<void> {
    if (!options.keepPublications) for (const target of [...this.published.keys()]) await this.unpublish(target).catch(() => undefined);
    this.published.clear();
    await this.spares.close();
  }

  private layerDirOf(target: string): string {
    return layerDirFor(layersDirOf(this.config), target);
  }

  private viewDirOf(target: string): string {
    return viewDirFor(viewsDirOf(this.config), target);
  }

  private async accessFor(request: Pick<PublishRequest, 'repository' | 'credentials' | 'ssh'>): Promise<RemoteAccess> {
    const remote = RemoteUrl.parse(request.repository, { allowFile: this.config.allowFile });
    const policy = this.config.remotePolicy;
    // The name is checked before anything else happens; addresses as connections are made.
    if (policy && remote.transport !== 'file') admissionOf({ remote, policy }, new URL(remote.url));
    const ssh = request.ssh ? await this.keyring.files(request.ssh) : undefined;
    return { remote, credentials: request.credentials, ssh, allowFile: this.config.allowFile, policy };
  }

  /**
   * What this publish checks before mounting: the volume's own limits, and the node's byte limit
   * (which needs the tree's sizes, known after ready); the node's entry limit is the preparation's.
   */
  private limitsOf(request: PublishRequest): VolumeLimits | undefined {
    const maxBytes = request.limits?.maxBytes ?? this.config.treeLimits.maxBytes;
    const maxEntries = request.limits?.maxEntries;
    if (maxBytes === undefined && maxEntries === undefined) return undefined;
    return { maxBytes, maxEntries, bytesFrom: request.limits?.maxBytes === undefined ? 'node' : 'volume' };
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
}
