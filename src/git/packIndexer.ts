import { ChildProcess } from 'node:child_process';
import { GitfsError } from '../errors/errors';
import { killGit, spawnGit } from './gitProcess';

/**
 * Stores a pack in a repository as it streams in: `git index-pack --stdin`, the step `git fetch`
 * itself ends with. The pack is marked as a promisor pack, so git knows the blobs its trees name
 * are promised by the remote rather than lost.
 */
export class PackIndexer {
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;
  private stderr = '';
  private stdout = '';

  constructor(private readonly gitDir: string, timeoutMs: number) {
    this.child = spawnGit({ args: ['index-pack', '--stdin', '--fix-thin', '--promisor'], gitDir, timeoutMs });
    const timer = setTimeout(() => killGit(this.child), timeoutMs);
    this.child.stderr!.on('data', (b: Buffer) => (this.stderr += b.toString()));
    this.child.stdout!.on('data', (b: Buffer) => (this.stdout += b.toString()));
    this.child.stdin!.on('error', () => undefined); // a failure shows in the exit code
    this.exited = new Promise((resolve) => this.child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    }));
  }

  /** Resolves once git has taken the chunk (or its pipe has room again). */
  write(chunk: Buffer): Promise<void> | undefined {
    if (this.child.stdin!.write(chunk)) return undefined;
    return new Promise((resolve) => {
      this.child.stdin!.once('drain', resolve);
      this.child.once('close', resolve);
    });
  }

  /** Resolves with the stored pack's file name (`pack-<id>.pack`) once git has indexed it. */
  async finish(): Promise<string> {
    this.child.stdin!.end();
    const code = await this.exited;
    if (code !== 0) throw new GitfsError('internal', `git index-pack in ${this.gitDir} exited with ${code}: ${this.stderr.trim().slice(0, 300)}`);
    // index-pack prints "pack\t<id>" (or "keep\t<id>") for the pack it wrote.
    return `pack-${this.stdout.trim().split('\t').pop()}.pack`;
  }

  abort(): Promise<unknown> {
    killGit(this.child);
    return this.exited;
  }
}
