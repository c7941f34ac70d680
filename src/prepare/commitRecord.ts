import { GitfsError } from '../errors/errors';
import { MountedTree } from '../fuse/mountedTree';
import { ReadinessGate } from '../fuse/readinessGate';
import { Logger } from '../log/logger';
import { TreeMount } from '../mount/treeMount';
import { Preparation } from './preparation';

/**
 * Everything the node holds for one commit of one repository: its preparation (and so its tree
 * index), its filesystem and FUSE mount, and who holds it. It lives from its first consumer
 * until a grace period after its last, so that a pod restarting on the same commit finds it
 * warm; then it unmounts and leaves its registry, and nothing keeps its memory.
 */
export class CommitRecord {
  private preparation_: Preparation | undefined;
  /** The preparation came from a restore after a restart: made without any volume's credentials. */
  private restored = false;
  private treeMount: TreeMount | undefined;
  private mounting: Promise<void> | undefined;
  /** Consumers: publishes, bound or under way. */
  private consumers = 0;
  /** When it was made (ms since the epoch). */
  readonly createdAt = Date.now();
  /** Consumers and the preparations still running. */
  private holds = 0;
  private graceTimer: NodeJS.Timeout | undefined;
  private dropping: Promise<void> | undefined;

  constructor(
    readonly key: string,
    /** Where the commit's tree is mounted, once a consumer needs it. */
    readonly dir: string,
    private readonly graceMs: number,
    /** The commit's filesystem and mount at `dir`, serving behind `gate`. */
    private readonly newMount: (gate: ReadinessGate<MountedTree>) => TreeMount,
    /** Told once the record has let go of everything, so its registry forgets it. */
    private readonly onDropped: (record: CommitRecord) => void,
    private readonly log: Logger,
  ) {}

  get preparation(): Preparation {
    if (!this.preparation_) throw new GitfsError('internal', `${this.key} has no preparation yet`);
    return this.preparation_;
  }

  /** Settles once a record being dropped is gone; undefined while it is in use or in its grace period. */
  get leaving(): Promise<void> | undefined {
    return this.dropping;
  }

  /** Whether the tree is mounted (or being mounted) for this record. */
  get hasMount(): boolean {
    return this.treeMount !== undefined;
  }

  /** How many consumers (volumes) hold it now. */
  get consumerCount(): number {
    return this.consumers;
  }

  /** Whether a consumer uses the record (rather than only its grace period or a preparation still running). */
  get inUse(): boolean {
    return this.consumers > 0;
  }

  /** Adds a consumer; one arriving in the grace period finds the record as it was (no remount, no fetch). */
  retain(): void {
    this.consumers++;
    this.hold();
  }

  /**
   * The preparation for a new consumer: the current one, or a new one from `prepare` when there
   * is none yet, the last one failed, or it is a restore's and this consumer is a real publish
   * (which brings the volume's credentials).
   */
  prepare(restoring: boolean, prepare: () => Preparation): Preparation {
    const current = this.preparation_;
    if (current && current.phase !== 'failed' && (restoring || !this.restored)) return current;
    const preparation = prepare();
    this.preparation_ = preparation;
    this.restored = restoring;
    // Requests from now on wait at the new gate.
    this.treeMount?.filesystem.useGate(preparation.gate);
    // A running preparation holds the record: dropped midway, its commit would be fetched again by the next consumer.
    this.hold();
    void preparation.start().finally(() => this.letGoOfHold());
    return preparation;
  }

  /** The commit's tree mount, mounted by the first consumer that needs it; a failed mount is tried again by the next. */
  async mount(): Promise<TreeMount> {
    if (!this.treeMount) {
      this.treeMount = this.newMount(this.preparation.gate);
      this.mounting = this.treeMount.mount();
    }
    const treeMount = this.treeMount;
    try {
      await this.mounting;
    } catch (err) {
      if (this.treeMount === treeMount) this.treeMount = undefined;
      throw err;
    }
    return treeMount;
  }

  /** A consumer leaves; after the last hold, the record is dropped once its grace period passes (without one, now, and awaited). */
  release(): Promise<void> {
    if (this.consumers > 0) this.consumers--;
    return this.letGoOfHold();
  }

  private hold(): void {
    clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    this.holds++;
  }

  private async letGoOfHold(): Promise<void> {
    // A record dropped already (at shutdown) has nothing left to time.
    if (this.holds === 0 || --this.holds > 0 || this.dropping) return;
    if (this.graceMs <= 0) return this.drop();
    this.graceTimer = setTimeout(() => void this.drop(), this.graceMs);
  }

  /**
   * Unmounts the tree and leaves the registry; with `handOver`, leaves the mount to the holder for
   * the next process instead, once the requests it took are answered (within `drainMs`). Once only.
   */
  drop(options: { handOver?: boolean; drainMs?: number } = {}): Promise<void> {
    clearTimeout(this.graceTimer);
    this.dropping ??= this.letGo(options).finally(() => this.onDropped(this));
    return this.dropping;
  }

  private async letGo(options: { handOver?: boolean; drainMs?: number }): Promise<void> {
    const treeMount = this.treeMount;
    try {
      await this.mounting?.catch(() => undefined);
      await (options.handOver ? treeMount?.handOver(options.drainMs ?? 10_000) : treeMount?.unmount());
      if (treeMount) this.log.info({ dir: this.dir, handedOver: options.handOver ?? false }, 'tree mount released');
    } catch (err) {
      this.log.warn({ err, dir: this.dir }, 'tree mount could not be released cleanly');
    }
  }
}
