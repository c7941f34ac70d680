import { EventEmitter } from 'node:events';
import { BlobCache } from '../cache/blobCache';
import { asGitfsError, GitfsError, PreparationFailed } from '../errors/errors';
import { MountedTree } from '../fuse/mountedTree';
import { ReadinessGate } from '../fuse/readinessGate';
import { RemoteAccess } from '../git/gitEnvironment';
import { killGit } from '../git/gitProcess';
import { ResolvedRef } from '../git/remoteRefs';
import { RepositoryStore } from '../git/repositoryStore';
import { Logger } from '../log/logger';
import { TreeIndex } from '../tree/treeIndex';
import { buildTreeIndex } from '../tree/treeIndexBuilder';
import { resolveBlobSizes } from './blobSizes';
import { StoreBlobSource } from './storeBlobSource';

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
    private readonly depth: number | undefined,
    private readonly cache: BlobCache,
    /** Longest the tree listing, and the lookup of sizes, may take. */
    private readonly fetchMs: number,
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
    try {
      this.emit('phase', 'fetching', {});
      const fetched = await this.store.fetchCommit(this.access, this.resolved, this.depth);
      enter('indexing', { fetched });
      const [tree, commitTime] = await Promise.all([this.indexTree(), this.store.commitTime(this.resolved.commit)]);
      index = tree;
      this.gate.open({ index, source: new StoreBlobSource(this.store, this.access, this.resolved.commit, this.depth), sizes: this.sizes, commitTime });
      enter('ready', { entries: index.count, readyMs: Date.now() - this.startedAt });
    } catch (err) {
      const failure = new PreparationFailed(this.phase_, asGitfsError(err));
      this.gate.fail(failure);
      this.sizes.fail(failure);
      this.fail(failure);
      return;
    }
    try {
      enter('sizing');
      const sources = await resolveBlobSizes(index, this.store, this.access, this.cache, this.fetchMs, this.log);
      this.sizes.open();
      enter('complete', { sources, totalBytes: index.totalBytes, totalMs: Date.now() - this.startedAt });
    } catch (err) {
      const failure = new PreparationFailed('sizing', asGitfsError(err));
      this.sizes.fail(failure);
      this.fail(failure);
    }
  }

  private fail(failure: PreparationFailed): void {
    this.log.error({ phase: this.phase_, err: failure }, 'preparation failed');
    this.phase_ = 'failed';
    this.emit('phase', 'failed', { reason: failure.message });
  }

  private async indexTree(): Promise<TreeIndex> {
    const child = this.store.listTree(this.resolved.commit);
    const timer = setTimeout(() => killGit(child), this.fetchMs);
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
