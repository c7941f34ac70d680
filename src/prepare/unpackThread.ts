import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { BlobCache } from '../cache/blobCache';
import { ServableBlobsMemory } from '../cache/servableBlobs';
import { ErrorKind, GitfsError } from '../errors/errors';
import { DEFAULT_BLOB_TRANSFER, PackSink } from '../git/blobTransfer';

/** What the unpacking thread is started with: the cache's shared memory and the size of its segments. */
export interface UnpackerData {
  servable: ServableBlobsMemory;
  segmentBytes: number;
}

/** What the main thread tells the unpacking thread, per job. */
export type ToUnpacker =
  | { job: number; start: { objectFormat: 'sha1' | 'sha256'; baseBytes: number } }
  | { job: number; chunk: Uint8Array }
  | { job: number; end: true }
  | { job: number; abort: true };

/**
 * What it answers: blobs now in the cache (with the pack bytes parsed to get them), the end, or
 * why not; and, for the whole thread, a segment it appends nothing more to.
 */
export type FromUnpacker =
  | { job: number; stored: Array<[oid: string, segment: number, offset: number, size: number]>; consumed: number }
  | { job: number; done: true }
  | { job: number; error: { kind: ErrorKind; message: string } }
  | { sealed: number };

/** Pack bytes handed over and not yet parsed; beyond this the transfer waits for the thread. */
const MAX_QUEUED_BYTES = 16 * 1024 * 1024;

interface Job {
  onStored(oid: string, size: number): void;
  queued: number;
  /** Wakes a push that waits for the queue to drain. */
  drained?: () => void;
  failure?: Error;
  finished: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
}

/**
 * One thread per node that parses whole-tree packs and appends their blobs straight to the
 * cache's segments. The main thread serves every FUSE operation; parsing a pack there made each one wait
 * behind the parse and the cache writes (measured: readers of the Go sources crawled at ~700
 * files/s while a transfer ran, and kept pace with it once the parse moved here). The main
 * thread keeps the transfer itself (credentials, timeouts, retries stay in one place) and
 * hands the pack over as it arrives.
 */
export class UnpackThread {
  private worker: Worker | undefined;
  private readonly jobs = new Map<number, Job>();
  /** Segments the thread appends to: sealed for it should it end. */
  private readonly appending = new Set<number>();
  private nextJob = 1;
  private closed = false;

  constructor(private readonly cache: BlobCache, private readonly baseBytes = DEFAULT_BLOB_TRANSFER.baseBytes) {}

  /** A sink for one pack; `onStored` hears of each blob once it is in the cache (and registered there). */
  sink(objectFormat: 'sha1' | 'sha256', onStored: (oid: string, size: number) => void): PackSink {
    const id = this.nextJob++;
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const finished = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    finished.catch(() => undefined); // a transfer that broke never asks for the end
    const job: Job = { onStored, queued: 0, finished, resolve, reject };
    const worker = this.post({ job: id, start: { objectFormat, baseBytes: this.baseBytes } });
    this.jobs.set(id, job);
    worker.ref(); // a job is running: its answers must arrive
    return {
      push: async (chunk) => {
        if (job.failure) throw job.failure;
        const own = new Uint8Array(chunk); // a buffer of its own, handed over without another copy
        job.queued += own.byteLength;
        this.post({ job: id, chunk: own }, [own.buffer]);
        while (job.queued > MAX_QUEUED_BYTES && !job.failure) await new Promise<void>((wake) => (job.drained = wake));
        if (job.failure) throw job.failure;
      },
      end: () => {
        if (this.jobs.has(id)) this.post({ job: id, end: true });
        return finished;
      },
      abort: () => {
        if (!this.jobs.has(id)) return;
        this.settle(id, job, new GitfsError('internal', 'the transfer was abandoned'));
        this.worker?.postMessage({ job: id, abort: true });
      },
    };
  }

  /** Ends the thread; jobs still running fail, and no new one starts. */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    this.failAll(new GitfsError('internal', 'the unpacking thread is shut down'));
    await worker?.terminate();
  }

  /** Sends to the thread, started on first use; returns it. */
  private post(message: ToUnpacker, transfer?: ArrayBuffer[]): Worker {
    if (this.closed) throw new GitfsError('internal', 'the unpacking thread is shut down');
    this.worker ??= this.start();
    this.worker.postMessage(message, transfer);
    return this.worker;
  }

  private start(): Worker {
    const workerData: UnpackerData = { servable: this.cache.servable.memory, segmentBytes: this.cache.segmentBytes };
    const worker = new Worker(join(__dirname, 'unpackWorker.js'), { workerData });
    worker.on('message', (message: FromUnpacker) => this.receive(message));
    worker.on('error', (err) => this.failAll(new GitfsError('internal', `the unpacking thread failed: ${err.message}`, { cause: err })));
    worker.on('exit', () => {
      if (this.worker === worker) this.worker = undefined;
      for (const segment of this.appending) this.cache.sealed(segment);
      this.appending.clear();
      this.failAll(new GitfsError('internal', 'the unpacking thread exited'));
    });
    return worker;
  }

  private receive(message: FromUnpacker): void {
    if ('sealed' in message) {
      this.appending.delete(message.sealed);
      return this.cache.sealed(message.sealed);
    }
    const job = this.jobs.get(message.job);
    if ('stored' in message) {
      // In the cache whatever became of the job (one abandoned mid-chunk still wrote its blobs).
      for (const [oid, segment, offset, size] of message.stored) {
        this.appending.add(segment);
        this.cache.adopt(oid, { segment, offset, size });
        job?.onStored(oid, size);
      }
      if (!job) return;
      job.queued -= message.consumed;
      if (job.queued <= MAX_QUEUED_BYTES) job.drained?.();
    } else if (!job) {
      return;
    } else if ('done' in message) {
      this.settle(message.job, job);
    } else {
      this.settle(message.job, job, new GitfsError(message.error.kind, message.error.message));
    }
  }

  private settle(id: number, job: Job, failure?: Error): void {
    this.jobs.delete(id);
    if (this.jobs.size === 0) this.worker?.unref(); // idle: never what keeps the process alive
    if (!failure) return job.resolve();
    job.failure = failure;
    job.drained?.();
    job.reject(failure);
  }

  private failAll(failure: Error): void {
    for (const [id, job] of [...this.jobs]) this.settle(id, job, failure);
  }
}
