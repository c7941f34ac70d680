import { writeSync } from 'node:fs';
import { CorruptObject, NotReady } from '../errors/errors';
import { Priority } from '../hydrate/blobSource';
import { Hydrator } from '../hydrate/hydrator';
import { Logger, silentLogger } from '../log/logger';
import { withinDeadline } from './deadline';
import { Errno, errnoOf } from './errno';
import { GitDirectory } from './gitDirectory';
import { ContentReader } from '../cache/blobCache';
import { isEmptyBlob } from '../gitdir/looseObject';
import { GitView } from '../gitdir/refFiles';
import { TagObjects } from '../gitdir/tagObjects';
import { Negotiated } from './initNegotiation';
import { MountedTree } from './mountedTree';
import { IN_HEADER, Op, OUT_HEADER, STATFS_OUT } from './protocol';
import { ReadinessGate } from './readinessGate';
import { DEFAULT_PREFETCH, PrefetchOptions, ReadPrefetcher } from './readPrefetcher';
import { ConnectionHandler, ServingThreads } from './servingThreads';
import { answer, ConnectionFacts, entryOf, error, gitDirBeforeReady, header, listedChildren, listingAsItStands, Need, nodeIdOf, NO_REPLY, readU64, REQUEST_COUNT_SLOTS, ServedTree, sizedEntryOf, writeU64 } from './treeAnswers';
import { EntrySizes } from './entrySizes';

export interface FilesystemOptions {
  /** Longest an operation waits at the readiness gate before failing with EIO. */
  gateWaitMs: number;
  /** Longest a read waits for its blob to hydrate before failing with EIO. */
  readWaitMs: number;
  prefetch: PrefetchOptions;
}

// The gate wait stays under kubelet-visible stalls; the read wait leaves room for a large blob.
export const DEFAULT_FILESYSTEM_OPTIONS: FilesystemOptions = { gateWaitMs: 10_000, readWaitMs: 60_000, prefetch: DEFAULT_PREFETCH };

/**
 * Every filesystem's replies from the main thread are written here: each is made and written in one
 * synchronous step, so one buffer serves them all (one per mount would be a megabyte per commit mounted).
 */
const MAIN_THREAD_REPLY = Buffer.allocUnsafe(256 * 4096 + OUT_HEADER);

/** Requests the kernel expects no reply to. */
const UNANSWERED = new Set<number>([Op.FORGET, Op.BATCH_FORGET, Op.INTERRUPT]);

/** A request the main thread is answering, by unique id, so that an INTERRUPT can find it. */
interface Pending {
  interrupted: boolean;
}

/**
 * The read-only filesystem of one commit, on the main thread: the requests its serving threads
 * could not answer alone come here. A request waits at the readiness gate, for the tree's sizes
 * or for its blob to hydrate (through the node-wide hydrator, into the shared cache), then is
 * answered with the same code the threads use. Also STATFS, INTERRUPT and DESTROY. Nothing here
 * blocks the event loop on our own mount.
 */
export class TreeFilesystem implements ConnectionHandler {
  private readonly prefetcher: ReadPrefetcher;
  private connection: { fd: number; facts: ConnectionFacts; threads: ServingThreads } | undefined;
  private tree: ServedTree | undefined;
  private mounted: MountedTree | undefined;
  private gitDir: GitDirectory | undefined;
  /** Sizes asked for entry by entry, for the tree being served, before the tree's sizes are all in. */
  private entrySizes: EntrySizes | undefined;
  /** The annotated tags the volumes of this commit asked for, which its `.git` serves. */
  readonly tags = new TagObjects();
  private readonly pending = new Map<bigint, Pending>();
  /** When each request the main thread will answer came, for the node's request stats. */
  private readonly started = new Map<bigint, { op: number; at: number }>();
  private readonly answering = new Set<Promise<void>>();
  private readonly out = MAIN_THREAD_REPLY;
  private readonly loggedOps = new Set<number>();
  private endedWith: number | undefined;
  /** Requests received by opcode, over every connection this filesystem served. */
  readonly requests = new Int32Array(new SharedArrayBuffer(REQUEST_COUNT_SLOTS * 4));

  constructor(
    private gate_: ReadinessGate<MountedTree>,
    private readonly hydrator: Hydrator,
    private readonly options: FilesystemOptions = DEFAULT_FILESYSTEM_OPTIONS,
    private readonly log: Logger = silentLogger,
    /** The view of `.git` of the one consumer of a mount at its own mountpoint (default: HEAD detached at the commit). */
    private readonly view?: GitView,
  ) {
    this.prefetcher = new ReadPrefetcher(hydrator, options.prefetch);
  }

  get gate(): ReadinessGate<MountedTree> {
    return this.gate_;
  }

  /** Lookup counts the kernel holds, per entry (tests; undefined before the tree is served). */
  get lookups(): Int32Array | undefined {
    return this.tree?.lookups;
  }

  /** Why the connection ended (an errno), or undefined while it serves. */
  get endedWithErrno(): number | undefined {
    return this.endedWith;
  }

  /** A retried preparation brings a new gate; requests from now on wait on it. */
  useGate(gate: ReadinessGate<MountedTree>): void {
    if (gate === this.gate_) return;
    this.gate_ = gate;
    this.whenReady();
  }

  /** Starts serving connection `fd` (INIT answered) on the node's serving threads. */
  serve(fd: number, negotiated: Negotiated, threads: ServingThreads, owner: { uid: number; gid: number }): void {
    const facts: ConnectionFacts = { negotiated, ...owner, requests: this.requests, gitDir: this.view !== 'no-git' };
    this.connection = { fd, facts, threads };
    this.endedWith = undefined;
    threads.add(fd, facts, this);
    this.whenReady();
  }

  /**
   * Stops serving (the descriptor stays open: the caller closes it or leaves it to the holder).
   * With `drain`, requests already taken off the connection are answered first, within `drainMs`.
   */
  async stop(options: { drain: boolean; drainMs?: number }): Promise<void> {
    const connection = this.connection;
    if (!connection) return;
    await connection.threads.remove(connection.fd);
    if (options.drain && this.answering.size > 0) {
      const drained = Promise.allSettled(this.answering).then(() => undefined);
      await withinDeadline(drained, options.drainMs ?? this.options.readWaitMs, () => new NotReady('requests still unanswered')).catch(() => undefined);
    }
    this.connection = undefined;
    this.started.clear();
  }

  /** Requests the main thread is answering now; a graceful handover waits for them. */
  get inFlight(): number {
    return this.answering.size;
  }

  ended(errno: number): void {
    if (this.endedWith !== undefined) return;
    this.endedWith = errno;
    this.log.info({ errno }, 'FUSE connection ended');
  }

  forwarded(need: number, request: Buffer): void {
    const connection = this.connection;
    if (!connection) return;
    const op = request.length >= IN_HEADER ? request.readUInt32LE(4) : -1;
    if (op >= 0 && !UNANSWERED.has(op)) this.started.set(request.readBigUInt64LE(8), { op, at: performance.now() });
    if (need === Need.Malformed) {
      this.log.warn({ bytes: request.length, op }, 'malformed FUSE request answered with EIO');
      if (request.length >= OUT_HEADER) this.write(error(this.out, request, Errno.EIO));
    } else if (need === Need.Unknown) {
      if (!this.loggedOps.has(op)) this.log.warn({ op }, 'unknown FUSE request answered with ENOSYS (logged once per opcode)');
      this.loggedOps.add(op);
      this.write(error(this.out, request, Errno.ENOSYS));
    } else if (need === Need.MainThread) this.answerHere(request, op);
    else this.track(this.answerLater(request));
  }

  private track(answering: Promise<void>): void {
    this.answering.add(answering);
    void answering.finally(() => this.answering.delete(answering));
  }

  private answerHere(request: Buffer, op: number): void {
    switch (op) {
      case Op.STATFS:
        return this.write(this.statfs(request));
      case Op.INTERRUPT:
        return this.interrupt(request);
      case Op.DESTROY:
        return this.write(header(this.out, request, OUT_HEADER, 0));
      default: {
        // A request that came before its connection was announced to the thread: answered here.
        const result = answer(request, request.length, this.connection!.facts, this.tree, this.hydrator.cache.reader, this.out);
        if (result > 0) this.write(result);
        else if (result !== NO_REPLY) this.track(this.answerLater(request));
      }
    }
  }

  /** Gets what the request needs (the tree, sizes, its blob), then answers it; bounded, and EIO with the reason logged. */
  private async answerLater(request: Buffer): Promise<void> {
    const unique = request.readBigUInt64LE(8);
    const pending: Pending = { interrupted: false };
    this.pending.set(unique, pending);
    try {
      const early = this.tree || !this.connection?.facts.gitDir ? undefined : gitDirBeforeReady(this.out, request, request.length, this.connection.facts);
      if (early !== undefined) return this.write(early);
      for (let attempt = 0; attempt < 3; attempt++) {
        const tree = this.tree ?? this.servedTree(await this.gate.wait(this.options.gateWaitMs));
        const facts = this.connection?.facts;
        if (!facts) return;
        const result = answer(request, request.length, facts, tree, this.hydrator.cache.reader, this.out);
        if (result >= 0) {
          if (!pending.interrupted && result !== NO_REPLY) this.write(result);
          return;
        }
        if (pending.interrupted) return;
        if (result === Need.GitDir) {
          const reply = await this.gitDirectory(tree).answer(request, facts);
          if (!pending.interrupted) this.write(reply.length, reply);
          return;
        }
        if (result === Need.Sizes) {
          await this.sizesOf(tree, request);
          // A listing goes without the sizes that could not be learnt rather than asking again.
          if (request.readUInt32LE(4) === Op.READDIRPLUS) {
            if (!pending.interrupted) this.write(listingAsItStands(this.out, request, facts, tree));
            return;
          }
        }
        // Hydrated, yet not in the serving threads' set (it was full): read here.
        else if (result === Need.Blob && attempt > 0) return await this.readHere(request, tree, pending);
        else if (result === Need.Blob) await this.hydrate(tree, entryOf(request, tree.index), attempt);
        else return this.forwarded(result, request);
      }
      throw new CorruptObject(`entry ${nodeIdOf(request)}`, 'the cached copy could not be read after fetching it again');
    } catch (err) {
      if (!pending.interrupted && this.connection) {
        this.log.warn({ op: request.readUInt32LE(4), node: nodeIdOf(request), err }, 'filesystem operation failed');
        this.write(error(this.out, request, errnoOf(err)));
      }
    } finally {
      this.pending.delete(unique);
    }
  }

  /**
   * Waits until the sizes a request needs are known: asked for alone (with their neighbours), or
   * learnt with the whole tree's, whichever comes first; a failure of one leaves the other to answer.
   */
  private async sizesOf(tree: ServedTree, request: Buffer): Promise<void> {
    if (this.entrySizes?.index !== tree.index) this.entrySizes = new EntrySizes(tree.index, this.mounted!.source, this.hydrator);
    const op = request.readUInt32LE(4);
    const asked = op === Op.READDIRPLUS
      ? this.entrySizes.learnListed(listedChildren(request, tree.index, entryOf(request, tree.index)))
      : this.entrySizes.learn(sizedEntryOf(request, tree.index), op === Op.LOOKUP);
    const learnt = withinDeadline(asked, this.options.gateWaitMs, () => new NotReady(`sizes for node ${nodeIdOf(request)} are not known after ${this.options.gateWaitMs} ms`));
    await Promise.any([learnt, this.mounted!.sizes.wait(this.options.gateWaitMs)]).catch((err: AggregateError) => {
      throw err.errors[0];
    });
  }

  /** A READ or READLINK answered from the cached blob on this thread (fetched again should it be gone). */
  private readHere(request: Buffer, tree: ServedTree, pending: Pending): Promise<void> {
    const entry = entryOf(request, tree.index);
    const readlink = request.readUInt32LE(4) === Op.READLINK;
    const position = readlink ? 0 : readU64(request, IN_HEADER + 8);
    const wanted = Math.min(readlink ? Infinity : request.readUInt32LE(IN_HEADER + 16), this.out.length - OUT_HEADER);
    return this.withBlob(tree.index.oid(entry), Math.max(0, tree.index.size(entry)), (read, size) => {
      const length = Math.max(0, Math.min(wanted, size - position));
      if (length > 0) read(position, length, this.out, OUT_HEADER);
      // Written at once: the reply buffer is shared.
      if (!pending.interrupted) this.write(header(this.out, request, OUT_HEADER + length, 0));
    });
  }

  /** Brings the entry's blob into the cache, verified, so that it is served from there. */
  private async hydrate(tree: ServedTree, entry: number, attempt: number): Promise<void> {
    const oid = tree.index.oid(entry);
    if (await this.verifiedInCache(oid)) return;
    // What may be read next is asked for once this read is served: a reader waiting for its first
    // byte does not share the server with a prefetch.
    await this.fetchBlob(oid, Math.max(0, tree.index.size(entry)));
    if (attempt === 0) this.prefetcher.onColdRead(this.mounted!, entry);
  }

  private async verifiedInCache(oid: string): Promise<boolean> {
    // Cached but not yet verified in this process (left by an earlier run): using it verifies it.
    return (await this.hydrator.cache.use(oid, () => true)) === true;
  }

  private fetchBlob(oid: string, sizeHint: number): Promise<void> {
    const hydrated = this.hydrator.hydrate(this.mounted!.source, oid, Priority.Read, sizeHint);
    return withinDeadline(hydrated, this.options.readWaitMs, () => new NotReady(`blob ${oid} did not arrive within ${this.options.readWaitMs} ms`));
  }

  /** The tree's `.git`, made when first asked for. */
  private gitDirectory(tree: ServedTree): GitDirectory {
    const refs = this.view && this.view !== 'no-git' ? this.view.refs : undefined;
    this.gitDir ??= new GitDirectory(tree, this.mounted!, (oid, sizeHint, use) => this.withBlob(oid, sizeHint, use), this.options.gateWaitMs, this.tags, refs);
    return this.gitDir;
  }

  /**
   * Uses a blob's content, verified, fetched first when it is not in the cache; git reading an
   * object is not a walk of its directory, so nothing beside it is fetched. `use` reads the cached
   * copy synchronously (it is never under a mount of ours).
   */
  private async withBlob<T>(oid: string, sizeHint: number, use: (read: ContentReader, size: number) => T): Promise<T> {
    if (isEmptyBlob(oid)) return use(() => undefined, 0);
    const cache = this.hydrator.cache;
    const used = (read: ContentReader, size: number) => ({ result: use(read, size) });
    for (let attempt = 0; ; attempt++) {
      // Using verifies a blob an earlier run left; one not here (or not sound) is fetched first.
      let outcome = await cache.use(oid, used);
      if (!outcome) {
        await this.fetchBlob(oid, sizeHint);
        outcome = await cache.use(oid, used);
      }
      if (outcome) return outcome.result;
      // Evicted or found corrupt since: fetched again, twice at most.
      if (attempt >= 2) throw new CorruptObject(oid, 'the cached copy could not be read after fetching it again');
    }
  }

  /** The kernel asks to abandon a request a signal interrupted: answered EINTR now, its own answer dropped. */
  private interrupt(request: Buffer): void {
    if (request.length < IN_HEADER + 8) return;
    const target = request.readBigUInt64LE(IN_HEADER);
    const pending = this.pending.get(target);
    if (!pending || pending.interrupted) return;
    pending.interrupted = true;
    const out = this.out;
    out.writeUInt32LE(OUT_HEADER, 0);
    out.writeInt32LE(-Errno.EINTR, 4);
    out.writeBigUInt64LE(target, 8);
    this.write(OUT_HEADER);
  }

  /** `df` shows the tree: its size in 4 KiB blocks, its entries as inodes, nothing free. */
  private statfs(request: Buffer): number {
    const index = this.mounted?.index;
    const out = this.out;
    const at = OUT_HEADER;
    out.fill(0, at, at + STATFS_OUT);
    writeU64(out, at, index ? Math.ceil(index.totalBytes / 4096) : 0);
    writeU64(out, at + 24, index ? index.count : 0);
    out.writeUInt32LE(4096, at + 40); // bsize
    out.writeUInt32LE(255, at + 44); // namelen
    out.writeUInt32LE(4096, at + 48); // frsize
    return header(out, request, at + STATFS_OUT, 0);
  }

  private whenReady(): void {
    const gate = this.gate_;
    gate.whenSettled().then(
      (mounted) => {
        // A failed gate is answered request by request (EIO, reason logged).
        if (mounted && gate === this.gate_ && this.connection) this.servedTree(mounted);
      },
    );
  }

  /** The tree as serving threads see it, made once per ready gate and handed to them. */
  private servedTree(mounted: MountedTree): ServedTree {
    if (this.tree && this.mounted === mounted) return this.tree;
    this.mounted = mounted;
    this.tree = {
      index: mounted.index,
      lookups: new Int32Array(new SharedArrayBuffer(mounted.index.count * 4)),
      commitSeconds: Math.floor(mounted.commitTime.getTime() / 1000),
    };
    this.gitDir = undefined;
    if (this.connection) this.connection.threads.serveTree(this.connection.fd, this.tree);
    return this.tree;
  }

  private write(length: number, reply: Buffer = this.out): void {
    if (!this.connection) return;
    const unique = reply.readBigUInt64LE(8);
    const started = this.started.get(unique);
    this.started.delete(unique);
    try {
      writeSync(this.connection.fd, reply, 0, length);
      if (started) this.connection.threads.stats.record(started.op, (performance.now() - started.at) * 1000, -reply.readInt32LE(4));
    } catch (err) {
      // ENOENT: the kernel no longer waits for this request (interrupted, or the connection ended).
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENODEV') this.log.warn({ code }, 'a FUSE reply could not be written');
    }
  }
}
