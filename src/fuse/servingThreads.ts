import { closeSync, writeSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { MessageChannel, MessagePort, Worker } from 'node:worker_threads';
import { ServableBlobs } from '../cache/servableBlobs';
import { Logger } from '../log/logger';
import { TreeIndexColumns } from '../tree/treeIndex';
import { withinDeadline } from './deadline';
import { RequestStats } from './requestStats';
import { fuseDevice } from './fuseDevice';
import { ConnectionFacts, ServedTree } from './treeAnswers';

/** What the main thread tells a serving thread (on its control port, which it polls between requests). */
export type ToServingThread =
  | { add: number; facts: ConnectionFacts }
  | { tree: number; columns: TreeIndexColumns; lookups: Int32Array; commitSeconds: number }
  | { remove: number }
  | { stop: true };

/** What a serving thread reports: a request for the main thread, a connection that ended, a removal done. */
export type FromServingThread =
  | { fd: number; need: number; request: ArrayBuffer }
  | { ended: number; errno: number }
  | { removed: number }
  | { fd: number; writeFailed: string };

/** The main thread's side of one connection: what serving threads could not answer, and its end. */
export interface ConnectionHandler {
  forwarded(need: number, request: Buffer): void;
  ended(errno: number): void;
}

interface ServingThread {
  worker: Worker;
  control: MessagePort;
  epoll: number;
  wake: number;
  exited: Promise<void>;
}

const WAKE = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);
/** Threads confirm a removal within one pass of their loop: milliseconds. */
const REMOVE_MS = 5_000;

/**
 * The node's FUSE serving threads: one pool for every mount. Each thread waits on all the
 * node's /dev/fuse connections at once (its own epoll set; each request wakes one thread) and
 * answers lookups, attributes, listings and reads of cached blobs by itself, from the tree index
 * and the cache's table of verified blobs in shared memory. What needs waiting (the readiness gate, sizes,
 * a blob to fetch) comes to the main thread, which answers it later by its unique id; a serving
 * thread never waits for the main thread.
 */
export class ServingThreads {
  private threads: ServingThread[] = [];
  private readonly handlers = new Map<number, { handler: ConnectionHandler; facts: ConnectionFacts; tree?: ServedTree }>();
  private readonly removals = new Map<number, { left: number; done: () => void }>();
  private readonly writeFailures = new Set<string>();
  /** Every request of every connection, counted by the thread that answered it. */
  readonly stats = new RequestStats();

  constructor(private readonly servable: ServableBlobs, private readonly log: Logger, private readonly count = Math.min(4, Math.max(2, cpus().length))) {}

  get connections(): number {
    return this.handlers.size;
  }

  /** Serves connection `fd` from now on; its INIT is already answered. */
  add(fd: number, facts: ConnectionFacts, handler: ConnectionHandler): void {
    if (this.threads.length === 0) this.threads = Array.from({ length: this.count }, () => this.startThread());
    this.handlers.set(fd, { handler, facts });
    for (const thread of this.threads) this.announce(thread, fd, facts);
  }

  private announce(thread: ServingThread, fd: number, facts: ConnectionFacts, tree?: ServedTree): void {
    this.post(thread, { add: fd, facts });
    if (tree) this.post(thread, treeMessage(fd, tree));
    fuseDevice().epollAdd(thread.epoll, fd, true);
    thread.worker.ref();
  }

  /** The connection's tree is ready: serving threads answer from it without the main thread. */
  serveTree(fd: number, tree: ServedTree): void {
    const connection = this.handlers.get(fd);
    if (connection) connection.tree = tree;
    for (const thread of this.threads) this.post(thread, treeMessage(fd, tree));
  }

  /** Stops serving `fd`: resolves once no thread will touch it again (then it may be closed). */
  async remove(fd: number): Promise<void> {
    if (!this.handlers.delete(fd)) return;
    const native = fuseDevice();
    const removed = new Promise<void>((done) => {
      this.removals.set(fd, { left: this.threads.length, done });
      for (const thread of this.threads) {
        native.epollRemove(thread.epoll, fd);
        this.post(thread, { remove: fd });
      }
    });
    // Bounded: a thread that died meanwhile never answers (its descriptor set is gone with it).
    await withinDeadline(removed, REMOVE_MS, () => new Error('timed out')).catch(() => this.log.warn({ fd }, 'a serving thread did not confirm it let a connection go'));
    this.removals.delete(fd);
    if (this.handlers.size === 0) for (const thread of this.threads) thread.worker.unref();
  }

  /** Ends every thread (after `remove` of their connections, or leaving them to a successor). */
  async close(): Promise<void> {
    const threads = this.threads;
    this.threads = [];
    for (const thread of threads) {
      // Referenced while they stop: otherwise a process with nothing else to do exits before they have.
      thread.worker.ref();
      this.post(thread, { stop: true });
    }
    await Promise.all(threads.map((t) => t.exited));
    for (const thread of threads) {
      closeSync(thread.epoll);
      closeSync(thread.wake);
    }
    this.handlers.clear();
  }

  private post(thread: ServingThread, message: ToServingThread): void {
    thread.control.postMessage(message);
    writeSync(thread.wake, WAKE);
  }

  private startThread(): ServingThread {
    const native = fuseDevice();
    const epoll = native.epollCreate();
    const wake = native.eventFd();
    native.epollAdd(epoll, wake, false);
    const { port1: control, port2 } = new MessageChannel();
    const worker = new Worker(join(__dirname, 'servingThread.js'), {
      workerData: { epoll, wake, control: port2, servable: this.servable.memory, stats: this.stats.memory },
      transferList: [port2],
    });
    worker.unref();
    worker.on('message', (message: FromServingThread) => this.received(message));
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    const thread: ServingThread = { worker, control, epoll, wake, exited };
    // A thread that failed is replaced at once and told every connection: the mounts never go unserved.
    worker.on('error', (err) => {
      this.log.error({ err }, 'a FUSE serving thread failed; starting another');
      const at = this.threads.indexOf(thread);
      if (at < 0) return;
      const replacement = this.startThread();
      this.threads[at] = replacement;
      for (const [fd, connection] of this.handlers) this.announce(replacement, fd, connection.facts, connection.tree);
      void exited.then(() => {
        closeSync(epoll);
        closeSync(wake);
      });
    });
    return thread;
  }

  private received(message: FromServingThread): void {
    if ('need' in message) this.handlers.get(message.fd)?.handler.forwarded(message.need, Buffer.from(message.request));
    else if ('ended' in message) this.handlers.get(message.ended)?.handler.ended(message.errno); else if ('removed' in message) {
      const removal = this.removals.get(message.removed);
      if (removal && --removal.left === 0) {
        this.removals.delete(message.removed);
        removal.done();
      }
    } else if (!this.writeFailures.has(message.writeFailed)) {
      this.writeFailures.add(message.writeFailed);
      this.log.warn({ code: message.writeFailed }, 'a FUSE reply could not be written');
    }
  }
}

function treeMessage(fd: number, tree: ServedTree): ToServingThread {
  return { tree: fd, columns: tree.index.columns, lookups: tree.lookups, commitSeconds: tree.commitSeconds };
}
