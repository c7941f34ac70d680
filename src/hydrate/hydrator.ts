import { BlobCache } from '../cache/blobCache';
import { asGitfsError, BlobTooLarge, GitfsError, LimitExceeded, ObjectMissing } from '../errors/errors';
import { formatBytes } from '../config/byteSize';
import { Logger, silentLogger } from '../log/logger';
import { BlobReceiver, BlobSource, Priority, PRIORITY_LEVELS } from './blobSource';

export interface HydratorLimits {
  /** Fetches in flight across the whole node, whatever the repository. */
  maxConcurrentFetches: number;
  maxBatchObjects: number;
  maxBatchBytes: number;
  /** How long the first request of a batch waits for others to join it. */
  batchWindowMs: number;
  /** The largest blob fetched and served (larger ones read as EFBIG); none: any. */
  maxBlobBytes?: number;
  /** Blobs up to this size may be fetched into memory whole; larger ones go through local storage. */
  maxHeldBlobBytes: number;
}

export const DEFAULT_LIMITS: HydratorLimits = {
  maxConcurrentFetches: 4,
  maxBatchObjects: 2000,
  maxBatchBytes: 256 * 1024 * 1024,
  batchWindowMs: 3,
  maxHeldBlobBytes: 64 * 1024 * 1024,
};

export interface HydrationStats {
  queued: number;
  /** Queued jobs per priority, most urgent first. */
  queuedByPriority: number[];
  inFlight: number;
  fetchBatches: number;
  blobsFetched: number;
  blobsHydrated: number;
  bytesHydrated: number;
  failures: number;
}

/** Told of each fetch and each blob's arrival (the node's metrics). */
export interface HydrationObserver {
  /** A fetch by id went out with this many blobs. */
  fetched(blobs: number): void;
  /** A requested blob is in the cache, `seconds` after it was first asked for at `priority`. */
  arrived(priority: Priority, seconds: number): void;
}

interface Job {
  oid: string;
  source: BlobSource;
  priority: Priority;
  /** When it was first asked for (performance.now()). */
  askedAt: number;
  sizeHint: number;
  /** Set while only a lookup wants it: a larger blob is not fetched (see hydrateIfSmall). */
  largest?: number;
  queued: boolean;
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Turns "I need blob X" into bytes in the cache. Concurrent requests for one blob share one
 * job; a queued prefetch is promoted when a read asks for it; blobs requested close together
 * from the same source are fetched in one round trip; fetches are limited node-wide.
 */
export class Hydrator {
  private readonly jobs = new Map<string, Job>();
  private readonly levels: Job[][] = Array.from({ length: PRIORITY_LEVELS }, () => []);
  private queuedCount = 0;
  private activeFetches = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly counters = { fetchBatches: 0, blobsFetched: 0, failures: 0 };

  constructor(
    readonly cache: BlobCache,
    private readonly limits: HydratorLimits = DEFAULT_LIMITS,
    private readonly log: Logger = silentLogger,
    private readonly observer?: HydrationObserver,
  ) {}

  stats(): HydrationStats {
    // Every blob a transfer brings is counted where it lands, whether a job waited for it or not.
    const { blobsTaken, bytesTaken } = this.cache.stats();
    return {
      queued: this.queuedCount,
      queuedByPriority: this.levels.map((level) => level.length),
      inFlight: this.jobs.size - this.queuedCount,
      ...this.counters,
      blobsHydrated: blobsTaken,
      bytesHydrated: bytesTaken,
    };
  }

  private tooLarge(size: number): boolean {
    return this.limits.maxBlobBytes !== undefined && size > this.limits.maxBlobBytes;
  }

  /** Resolves once the blob is in the cache. */
  hydrate(source: BlobSource, oid: string, priority: Priority, sizeHint = 0): Promise<void> {
    return this.want(source, oid, priority, sizeHint);
  }

  /**
   * Hydrates a blob of unknown size, as a read would, if it is at most `largest` bytes. A larger one
   * rejects with BlobTooLarge, its size said, after no more than its pack header has come; unless
   * a reader asked for it meanwhile, who gets it whole.
   */
  hydrateIfSmall(source: BlobSource, oid: string, largest: number): Promise<void> {
    return this.want(source, oid, Priority.Read, 0, largest);
  }

  private want(source: BlobSource, oid: string, priority: Priority, sizeHint: number, largest?: number): Promise<void> {
    if (this.closed) return Promise.reject(new GitfsError('internal', 'the hydrator is shut down'));
    const existing = this.jobs.get(oid);
    if (existing) {
      if (largest === undefined) existing.largest = undefined;
      if (priority < existing.priority) {
        if (existing.queued) this.requeue(existing, priority);
        else existing.priority = priority; // waiting for a whole-tree transfer: extracted first after it
      }
      return existing.promise;
    }
    if (this.cache.has(oid)) return Promise.resolve();
    if (this.tooLarge(sizeHint)) return Promise.reject(this.overLimit(oid, sizeHint));
    const job = this.newJob(source, oid, priority, sizeHint);
    job.largest = largest;
    this.enqueue(job);
    // A reader on an idle node does not wait for others to join its fetch.
    if (priority === Priority.Read && this.activeFetches === 0) this.pumpNow();
    else this.schedule();
    return job.promise;
  }

  private overLimit(oid: string, size: number): LimitExceeded {
    return new LimitExceeded(`blob ${oid} is ${formatBytes(size)}, over the largest this node serves (--max-blob-bytes ${formatBytes(this.limits.maxBlobBytes!)})`);
  }

  /**
   * Hydrates many blobs of one tree in the background: one transfer of the whole tree (cheaper
   * for the server than a list of ids), each blob cached as it streams in, or, where the source
   * cannot stream, taken from local storage afterwards, those a reader is waiting for first.
   * Requests for these blobs wait for the transfer rather than competing with it. Blobs the
   * transfer did not bring (or all, if it failed) are fetched by id.
   */
  async prefetchTree(source: BlobSource, blobs: Array<{ oid: string; size: number }>): Promise<void> {
    const jobs = blobs.filter((b) => !this.cache.has(b.oid) && !this.jobs.has(b.oid) && !this.tooLarge(b.size)).map((b) => this.newJob(source, b.oid, Priority.Background, b.size));
    if (jobs.length === 0) return;
    const started = Date.now();
    const waiting = new Set(jobs);
    // Prefetches of this tree still queued for fetches by id wait for the transfer instead: batches
    // beside it would make the server pack the same blobs twice, and slow the transfer down. A
    // queued read still goes out by id: its reader is waiting now.
    for (const b of blobs) {
      const job = this.jobs.get(b.oid);
      if (job?.queued && job.priority !== Priority.Read && job.source.key === source.key) waiting.add(job);
    }
    this.unqueue(waiting);
    try {
      await source.fetchEverything(this.receiverFor(waiting));
      this.counters.fetchBatches++;
      this.log.debug({ source: source.key, blobs: jobs.length, ms: Date.now() - started }, 'fetched whole tree');
    } catch (err) {
      this.log.warn({ source: source.key, err: asGitfsError(err) }, 'whole-tree fetch failed; fetching blobs by id');
    }
    if (this.closed) return;
    for (const job of waiting) if (this.jobs.get(job.oid) === job) this.enqueue(job);
    this.schedule();
  }

  /**
   * Takes blobs as a transfer streams them in: each is cached and its waiters released at once,
   * while the rest still arrives. A job leaves `waiting` when its blob has come.
   */
  private receiverFor(waiting: Set<Job>, largest = Infinity): BlobReceiver {
    const arrived = (oid: string) => {
      const job = this.jobs.get(oid);
      if (!job || !waiting.delete(job)) return;
      this.hydrated(job);
    };
    return {
      largest: Math.min(largest, this.limits.maxHeldBlobBytes, this.limits.maxBlobBytes ?? Infinity),
      deliver: async (oid, content) => {
        await this.cache.putVerified(oid, content);
        arrived(oid);
      },
      stored: arrived,
      readBack: (oid) => this.cache.readWhole(oid),
    };
  }

  /** Whether a request for this blob is queued or running. */
  isPending(oid: string): boolean {
    return this.jobs.has(oid);
  }

  private newJob(source: BlobSource, oid: string, priority: Priority, sizeHint: number): Job {
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    promise.catch(() => undefined); // prefetches may have no waiter
    const job: Job = { oid, source, priority, askedAt: performance.now(), sizeHint, queued: false, promise, resolve, reject };
    this.jobs.set(oid, job);
    return job;
  }

  private enqueue(job: Job): void {
    job.queued = true;
    this.levels[job.priority].push(job);
    this.queuedCount++;
  }

  private unqueue(jobs: Set<Job>): void {
    for (let p = 0; p < PRIORITY_LEVELS; p++) this.levels[p] = this.levels[p].filter((job) => !jobs.has(job));
    for (const job of jobs) {
      if (job.queued) this.queuedCount--;
      job.queued = false;
    }
  }

  private requeue(job: Job, priority: Priority): void {
    const level = this.levels[job.priority];
    level.splice(level.indexOf(job), 1);
    job.priority = priority;
    this.levels[priority].push(job);
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.activeFetches >= this.limits.maxConcurrentFetches) return;
    this.timer = setTimeout(() => this.pumpNow(), this.limits.batchWindowMs);
  }

  private pumpNow(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pump();
  }

  /** Fails everything queued or waiting and accepts no more work: nothing runs after shutdown. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    const stopped = new GitfsError('internal', 'the hydrator is shut down');
    for (const job of this.jobs.values()) job.reject(stopped);
    this.jobs.clear();
    this.levels.forEach((level) => (level.length = 0));
    this.queuedCount = 0;
  }

  private pump(): void {
    while (!this.closed && this.activeFetches < this.limits.maxConcurrentFetches && this.queuedCount > 0) {
      const batch = this.takeBatch();
      this.activeFetches++;
      void this.run(batch).finally(() => {
        this.activeFetches--;
        this.pump();
      });
    }
  }

  /**
   * The most urgent job and, from the same source, as many others as a batch may hold. Reads
   * go out only with other reads: a reader waiting for its first byte must not wait for a
   * prefetch of its whole directory, which follows in the next batch.
   */
  private takeBatch(): Job[] {
    const first = this.levels.find((l) => l.length > 0)![0];
    const lastLevel = first.priority === Priority.Read ? Priority.Read : PRIORITY_LEVELS - 1;
    const batch: Job[] = [];
    let bytes = 0;
    for (let p = 0; p <= lastLevel; p++) {
      const level = this.levels[p];
      const keep: Job[] = [];
      for (const job of level) {
        // A blob only a lookup wants goes alone: its transfer may stop at its header.
        const joins = batch.length > 0 && first.largest === undefined && job.largest === undefined;
        const fits = batch.length === 0 || (joins && batch.length < this.limits.maxBatchObjects && bytes + job.sizeHint <= this.limits.maxBatchBytes);
        if (fits && job.source.key === first.source.key) {
          batch.push(job);
          bytes += job.sizeHint;
          job.queued = false;
        } else keep.push(job);
      }
      this.levels[p] = keep;
    }
    this.queuedCount -= batch.length;
    return batch;
  }

  private async run(batch: Job[]): Promise<void> {
    const source = batch[0].source;
    // Blobs already in the store (evicted from the cache, or fetched by another batch) need no network.
    const missing = (await Promise.all(batch.map((job) => this.extract(job).then(() => undefined, (err) => this.missingOrFail(job, err))))).filter(
      (job): job is Job => job !== undefined,
    );
    if (missing.length === 0) return;
    const started = Date.now();
    const waiting = new Set(missing);
    try {
      this.counters.fetchBatches++;
      this.observer?.fetched(missing.length);
      if (!(await this.fetchBatch(source, missing, waiting))) return;
      this.counters.blobsFetched += missing.length;
      this.log.debug({ source: source.key, blobs: missing.length, ms: Date.now() - started }, 'fetched blob batch');
    } catch (err) {
      const error = asGitfsError(err);
      this.log.warn({ source: source.key, blobs: missing.length, err: error }, 'blob fetch failed');
      for (const job of waiting) this.fail(job, error);
      return;
    }
    await Promise.all([...waiting].map((job) => this.extract(job).catch((err) => this.fail(job, asGitfsError(err)))));
  }

  /**
   * Blobs known to be small enough to hold whole stream straight into the cache, and so does a
   * lone blob of unknown size: its pack header tells its size before its content, and one too
   * large to hold is then declined (only a lookup wanted it), refused by the node's limit, or
   * brought into local storage instead. False when it was declined.
   */
  private async fetchBatch(source: BlobSource, missing: Job[], waiting: Set<Job>): Promise<boolean> {
    const oids = missing.map((job) => job.oid);
    const lone = missing.length === 1 ? missing[0] : undefined;
    const streamable = missing.every((job) => (job.sizeHint > 0 || lone) && job.sizeHint <= this.limits.maxHeldBlobBytes);
    if (!streamable) {
      await source.fetch(oids);
      return true;
    }
    try {
      await source.fetch(oids, this.receiverFor(waiting, lone?.largest));
    } catch (err) {
      if (!(err instanceof BlobTooLarge && lone)) throw err;
      if (lone.largest !== undefined) return this.decline(lone, err);
      if (this.tooLarge(err.size)) throw this.overLimit(lone.oid, err.size);
      await source.fetch(oids);
    }
    return true;
  }

  /** A blob only a lookup wanted, found larger than it fetches: not a failure, its size is known. */
  private decline(job: Job, tooLarge: BlobTooLarge): false {
    this.jobs.delete(job.oid);
    job.reject(tooLarge);
    return false;
  }

  private missingOrFail(job: Job, err: unknown): Job | undefined {
    if (err instanceof ObjectMissing) return job;
    this.fail(job, asGitfsError(err));
    return undefined;
  }

  private async extract(job: Job): Promise<void> {
    const writer = this.cache.writer(job.oid);
    try {
      await job.source.extract(job.oid, writer);
      await writer.finish();
      this.hydrated(job);
    } catch (err) {
      await writer.abort();
      throw err;
    }
  }

  private hydrated(job: Job): void {
    this.jobs.delete(job.oid);
    this.observer?.arrived(job.priority, (performance.now() - job.askedAt) / 1000);
    job.resolve();
  }

  private fail(job: Job, error: GitfsError): void {
    this.counters.failures++;
    this.jobs.delete(job.oid);
    job.reject(error);
  }
}
