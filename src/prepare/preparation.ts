import { EventEmitter } from 'node:events';
import { BlobCache } from '../cache/blobCache';
import { asGitfsError, GitfsError, LimitExceeded, PreparationFailed } from '../errors/errors';
import { MountedTree } from '../fuse/mountedTree';
import { ReadinessGate } from '../fuse/readinessGate';
import { RemoteAccess } from '../git/gitEnvironment';
import { parseCommit } from '../git/commitObject';
import { HistoryPack, historyPack } from '../git/historyPack';
import { killGit } from '../git/gitProcess';
import { ResolvedRef } from '../git/remoteRefs';
import { RepositoryStore } from '../git/repositoryStore';
import { UploadPackClient } from '../git/uploadPackClient';
import { leftToGit } from '../git/v2Transport';
import { Logger } from '../log/logger';
import { TreeIndex } from '../tree/treeIndex';
import { buildTreeIndex } from '../tree/treeIndexBuilder';
import { TreeObjectsIndexer } from '../tree/treeObjectsIndex';
import { resolveBlobSizes } from './blobSizes';
import { StoreBlobSource } from './storeBlobSource';
import { UnpackThread } from './unpackThread';

export type Phase = 'fetching' | 'indexing' | 'ready' | 'sizing' | 'complete' | 'failed';

/**
 * Makes one commit of one repository servable: fetch its trees into the shared store, index
 * them, open the readiness gate, then learn blob sizes in the background. Runs once; every
 * consumer of the commit waits on the same gate. Emits 'phase' (phase, detail) as it goes.
 */
export class Preparation extends EventEmitter {
  readonly gate: ReadinessGate<MountedTree>;
  readonly sizes: ReadinessGate<void>;
  private phase_: Phase = 'fetching';
  private readonly startedAt = Date.now();
  private done: Promise<void> | undefined;

  constructor(
    readonly store: RepositoryStore,
    readonly access: RemoteAccess,
    readonly resolved: ResolvedRef,
    /** Our own protocol-v2 client for this remote, when it has one. */
    private readonly client: UploadPackClient | undefined,
    private readonly depth: number | undefined,
    private readonly cache: BlobCache,
    private readonly unpacker: UnpackThread,
    private readonly bounds: {
      /** Longest the tree listing (`ls-tree` of a commit already in the store) may take. */
      fetchMs: number;
      /** The most entries a tree may have to be served on this node. */
      maxEntries: number;
    },
    private readonly log: Logger,
  ) {
    super();
    const label = `${access.remote.display}@${resolved.commit.slice(0, 12)}`;
    this.gate = new ReadinessGate(label);
    this.sizes = new ReadinessGate(`sizes of ${label}`);
  }

  get phase(): Phase {
    return this.phase_;
  }

  /** "fetching for 12 s": the phase and how long the preparation has run, for messages. */
  progress(): string {
    return `${this.phase_} for ${((Date.now() - this.startedAt) / 1000).toFixed(1)} s`;
  }

  get failure(): GitfsError | undefined {
    return this.gate.failure ?? this.sizes.failure;
  }

  start(): Promise<void> {
    this.done ??= this.run();
    return this.done;
  }

  private async run(): Promise<void> {
    let phaseStart = Date.now();
    const enter = (phase: Phase, detail: Record<string, unknown> = {}) => {
      this.log.info({ phase: this.phase_, ms: Date.now() - phaseStart, ...detail }, `preparation ${this.phase_} done`);
      phaseStart = Date.now();
      this.phase_ = phase;
      this.emit('phase', phase, detail);
    };
    let index: TreeIndex;
    let stored: Promise<void> | undefined;
    let history: () => Promise<HistoryPack>;
    try {
      this.emit('phase', 'fetching', {});
      let commitTime: Date;
      const received = await this.receive();
      if (received) {
        enter('indexing', { fetched: true, client: 'gitfs-csi' });
        ({ index, commitTime, stored } = received);
      } else {
        const fetched = await this.store.fetchCommit(this.access, this.resolved, this.depth);
        enter('indexing', { fetched, client: 'git' });
        [index, commitTime] = await Promise.all([this.indexTree(), this.store.commitTime(this.resolved.commit)]);
      }
      if (index.count > this.bounds.maxEntries) {
        throw new LimitExceeded(`commit ${this.resolved.commit} of ${this.access.remote.display} has ${index.count} entries, over this node's limit of ${this.bounds.maxEntries} (--max-tree-entries)`);
      }
      const trees = stored ?? Promise.resolve();
      let made: Promise<HistoryPack> | undefined;
      // Made once for every mount of the commit; a failure is forgotten, to be tried again on next use.
      history = () => {
        if (!made) {
          made = trees.then(() => historyPack(this.store.gitDir, this.resolved.commit, this.bounds.fetchMs));
          made.catch(() => (made = undefined));
        }
        return made;
      };
      const source = new StoreBlobSource(this.store, this.access, this.resolved.commit, this.depth, this.client, this.unpacker);
      this.gate.open({ index, source, sizes: this.sizes, commitTime, history });
      enter('ready', { entries: index.count, readyMs: Date.now() - this.startedAt });
    } catch (err) {
      const failure = new PreparationFailed(this.phase_, asGitfsError(err));
      this.gate.fail(failure);
      this.sizes.fail(failure);
      this.fail(failure);
      return;
    }
    // The gate may open before the store has the trees too (ours indexes them from the transfer):
    // sizes are asked for meanwhile, and the store only for what the server did not tell.
    let step = 'sizing';
    try {
      enter('sizing');
      const storing = (stored ?? Promise.resolve()).catch((err) => {
        step = 'storing the fetched trees';
        throw err;
      });
      const [sources] = await Promise.all([resolveBlobSizes(index, this.store, storing, this.access, this.client, this.cache, this.log), storing]);
      this.sizes.open();
      enter('complete', { sources, totalBytes: index.totalBytes, totalMs: Date.now() - this.startedAt });
      // A bounded history is made now rather than when a volume's `.git` is first looked at: a walk
      // or a git command would wait for it there. Without depth it can be large: made on first use.
      if (this.depth) void history().catch(() => undefined);
    } catch (err) {
      const failure = new PreparationFailed(step, asGitfsError(err));
      this.sizes.fail(failure);
      this.fail(failure);
    }
  }

  private fail(failure: PreparationFailed): void {
    this.log.error({ phase: this.phase_, err: failure }, 'preparation failed');
    this.phase_ = 'failed';
    this.emit('phase', 'failed', { reason: failure.message });
  }

  /**
   * A commit new to the store, fetched with our own client and indexed from the pack as it
   * arrives. Undefined when the commit is already local (ls-tree reads it), when there is no
   * client for this remote, or when the client stepped aside or the transfer broke: git fetches
   * then. `stored` settles once the store holds the pack too.
   */
  private async receive(): Promise<{ index: TreeIndex; commitTime: Date; stored: Promise<void> } | undefined> {
    const commit = this.resolved.commit;
    // Without depth the whole history comes: its trees are too many to hold, so git stores them.
    if (!this.client || !this.depth || (await this.store.hasCommit(commit))) return undefined;
    const indexer = new TreeObjectsIndexer(commit);
    let commitTime: Date | undefined;
    let stored: Promise<void>;
    try {
      ({ stored } = await this.store.receiveCommit(this.client, this.resolved, this.depth, (object) => {
        if (object.kind === 'tree') indexer.addTree(object.oid, object.data);
        else if (object.oid === commit) {
          const facts = parseCommit(commit, object.data.toString('utf8'));
          indexer.setRoot(facts.tree);
          commitTime = facts.committedAt;
        }
      }));
    } catch (err) {
      if (!leftToGit(err)) throw err;
      this.log.info({ reason: (err as Error).message }, 'fetching with git instead');
      return undefined;
    }
    return { index: indexer.finish(), commitTime: commitTime!, stored };
  }

  private async indexTree(): Promise<TreeIndex> {
    const child = this.store.listTree(this.resolved.commit);
    const timer = setTimeout(() => killGit(child), this.bounds.fetchMs);
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const index = await buildTreeIndex(child.stdout!, this.resolved.commit);
    const code = await exited;
    clearTimeout(timer);
    if (code !== 0) throw new GitfsError('internal', `git ls-tree exited with ${code}: ${stderr.trim().slice(0, 300)}`);
    return index;
  }
}
