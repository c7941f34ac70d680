import { ChildProcess } from 'node:child_process';
import { GitfsError, ObjectMissing } from '../errors/errors';
import { killGit, spawnGit } from './gitProcess';

/** Receives one object's content as it streams out of git. */
export interface ObjectSink {
  start(size: number, type: string): void;
  /** May return a promise to apply backpressure (git's output pauses until it settles). */
  data(chunk: Buffer): void | Promise<void>;
}

interface Pending {
  oid: string;
  sink: ObjectSink;
  resolve: (size: number) => void;
  reject: (err: Error) => void;
  size: number;
  remaining: number;
}

/** How long a reader keeps its process with nothing to read. */
const IDLE_MS = 5_000;

/**
 * One long-lived `git cat-file --batch` process. Requests are pipelined: every oid is written
 * at once and answers are parsed in order, streaming each object's content to its sink
 * without buffering it (a 1 GiB blob never sits in memory).
 */
export class CatFileBatch {
  private child: ChildProcess | undefined;
  private readonly queue: Pending[] = [];
  private header: Buffer = Buffer.alloc(0);
  /** Bytes of content still expected by the first pending request, then its LF. */
  private inBody = false;
  private closed = false;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly gitDir: string) {}

  get pending(): number {
    return this.queue.length;
  }

  /** Streams the object to `sink`; resolves with its size. A missing object rejects with ObjectMissing. */
  read(oid: string, sink: ObjectSink): Promise<number> {
    if (this.closed) return Promise.reject(new GitfsError('internal', 'the object reader is closed'));
    clearTimeout(this.idleTimer);
    return new Promise((resolve, reject) => {
      const child = this.process();
      this.queue.push({ oid, sink, resolve, reject, size: 0, remaining: 0 });
      child.stdin!.write(`${oid}\n`);
    });
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.idleTimer);
    if (this.child) {
      this.child.stdin!.end();
      killGit(this.child);
      this.child = undefined;
    }
  }

  private process(): ChildProcess {
    if (this.child) return this.child;
    const child = spawnGit({ args: ['cat-file', '--batch'], gitDir: this.gitDir, timeoutMs: 0 });
    this.child = child;
    this.header = Buffer.alloc(0);
    this.inBody = false;
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)));
    child.stdin!.on('error', () => undefined);
    child.stdout!.on('data', (chunk: Buffer) => this.consume(chunk, child));
    child.on('close', (code) => {
      if (this.child === child) this.child = undefined;
      const err = new GitfsError('internal', `git cat-file exited (${code}): ${stderr.trim().slice(0, 300)}`);
      for (const p of this.queue.splice(0)) p.reject(err);
    });
    return child;
  }

  private consume(chunk: Buffer, child: ChildProcess): void {
    let offset = 0;
    while (offset < chunk.length) {
      const head = this.queue[0];
      if (!head) return; // output with nobody waiting: ignore
      if (!this.inBody) {
        const nl = chunk.indexOf(10, offset);
        if (nl < 0) {
          this.header = Buffer.concat([this.header, chunk.subarray(offset)]);
          return;
        }
        const line = Buffer.concat([this.header, chunk.subarray(offset, nl)]).toString('latin1');
        this.header = Buffer.alloc(0);
        offset = nl + 1;
        const [, type, size] = line.split(' ');
        if (type === 'missing' || size === undefined) {
          this.queue.shift();
          head.reject(new ObjectMissing(head.oid));
          continue;
        }
        head.size = head.remaining = Number(size);
        this.inBody = true;
        try {
          head.sink.start(head.remaining, type);
        } catch (err) {
          head.reject(err as Error);
        }
        continue;
      }
      if (head.remaining > 0) {
        const take = Math.min(head.remaining, chunk.length - offset);
        const piece = chunk.subarray(offset, offset + take);
        head.remaining -= take;
        offset += take;
        const wait = head.sink.data(piece);
        if (wait) {
          child.stdout!.pause();
          const rest = chunk.subarray(offset);
          wait.then(
            () => {
              child.stdout!.resume();
              if (rest.length) this.consume(rest, child);
            },
            (err) => {
              head.reject(err as Error);
              child.stdout!.resume();
              if (rest.length) this.consume(rest, child);
            },
          );
          return;
        }
        continue;
      }
      // The LF that ends every object's content.
      offset += 1;
      this.inBody = false;
      this.queue.shift();
      head.resolve(head.size);
    }
    if (this.queue.length === 0) this.stopWhenIdle(child);
  }

  /** A reader nobody asks for a while lets its process go (a node that used a store once keeps no git process for it); the next read starts another. */
  private stopWhenIdle(child: ChildProcess): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.child !== child || this.queue.length > 0) return;
      this.child = undefined;
      child.stdin!.end();
    }, IDLE_MS);
    this.idleTimer.unref();
  }
}
