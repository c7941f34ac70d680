import { ChildProcess } from 'node:child_process';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { GitfsError, RefNotFound } from '../errors/errors';
import { CatFileBatch } from './catFileBatch';
import { RemoteAccess, REMOTE_NAME } from './gitEnvironment';
import { runGit, spawnGit } from './gitProcess';
import { isCommitId, ResolvedRef } from './remoteRefs';
import { withRetry } from './retry';
import { simpleGitFailure, simpleGitFor } from './simpleGitClient';

export interface StoreTimeouts {
  /** ls-remote, init, rev-parse. */
  commandMs: number;
  /** Fetching a commit's trees or a batch of blobs. */
  fetchMs: number;
}

/**
 * One bare partial clone per remote per node, shared by every volume of that remote.
 * The store's config names no remote: the URL (and any credentials) are given to each
 * fetch, so nothing secret lands on disk and git can never lazy-fetch one blob per round
 * trip behind our back — missing objects are reported missing, and we fetch in batches.
 */
export class RepositoryStore {
  private ready: Promise<void> | undefined;
  private commitFetches = Promise.resolve();
  private readonly readers: CatFileBatch[] = [];
  private closed = false;

  constructor(
    readonly gitDir: string,
    readonly key: string,
    private readonly timeouts: StoreTimeouts,
    private readonly readersPerStore = 2,
  ) {}

  /**
   * Creates the bare repository on first use, in the remote's object format (known from the
   * length of its commit ids: 40 hex digits SHA-1, 64 SHA-256).
   */
  init(objectFormat: 'sha1' | 'sha256'): Promise<void> {
    this.ready ??= (async () => {
      const exists = await stat(join(this.gitDir, 'HEAD')).then(() => true, () => false);
      if (exists) return;
      await mkdir(this.gitDir, { recursive: true });
      try {
        await simpleGitFor({ baseDir: this.gitDir, timeoutMs: this.timeouts.commandMs }).init(true, [`--object-format=${objectFormat}`]);
      } catch (err) {
        throw simpleGitFailure(err, 'init', this.gitDir);
      }
    })();
    this.ready.catch(() => (this.ready = undefined));
    return this.ready;
  }

  async hasCommit(commit: string): Promise<boolean> {
    try {
      await runGit({ args: ['cat-file', '-e', `${commit}^{commit}`], gitDir: this.gitDir, timeoutMs: this.timeouts.commandMs });
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Makes `resolved.commit` and its trees local (no blobs). Returns false when they already
   * were, so a second volume of the same commit costs no network at all.
   */
  fetchCommit(access: RemoteAccess, resolved: ResolvedRef, depth: number | undefined): Promise<boolean> {
    const run = this.commitFetches.then(async () => {
      await this.init(resolved.commit.length === 64 ? 'sha256' : 'sha1');
      if (await this.hasCommit(resolved.commit)) return false;
      const depthArgs = depth ? [`--depth=${depth}`] : [];
      const keep = `refs/gitfs/commits/${resolved.commit}`;
      const byName = !isCommitId(resolved.refName);
      const source = byName ? resolved.refName : resolved.commit;
      await withRetry(() =>
        runGit({
          args: ['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--no-recurse-submodules', ...depthArgs, REMOTE_NAME, `+${source}:${keep}`],
          gitDir: this.gitDir,
          access,
          timeoutMs: this.timeouts.fetchMs,
        }).catch((err) => {
          if (err instanceof GitfsError && /not our ref|couldn't find remote ref|no such remote ref|unadvertised object/i.test(err.message)) {
            throw new RefNotFound(access.remote.display, resolved.refName);
          }
          throw err;
        }),
      );
      if (byName && !(await this.hasCommit(resolved.commit))) {
        // The branch moved between ls-remote and fetch: the next publish resolves it afresh.
        throw new GitfsError('transient', `ref ${resolved.refName} of ${access.remote.display} moved while fetching; retry`);
      }
      return true;
    });
    this.commitFetches = run.then(() => undefined, () => undefined);
    return run;
  }

  /** Streams `git ls-tree -r -t -z` of a commit: every tree and entry, depth first. */
  listTree(commit: string): ChildProcess {
    return spawnGit({ args: ['ls-tree', '-r', '-t', '-z', '--full-tree', commit], gitDir: this.gitDir, timeoutMs: 0 });
  }

  /** Sizes of the blobs already local; missing ones are simply absent from the result. */
  async localSizes(oids: string[]): Promise<Map<string, number>> {
    const sizes = new Map<string, number>();
    if (oids.length === 0) return sizes;
    const { stdout } = await runGit({
      args: ['cat-file', '--batch-check=%(objectname) %(objectsize)', '--buffer'],
      gitDir: this.gitDir,
      input: oids.join('\n') + '\n',
      timeoutMs: this.timeouts.fetchMs,
    });
    for (const line of stdout.toString('latin1').split('\n')) {
      const [oid, size] = line.split(' ');
      if (size !== undefined && size !== 'missing' && /^\d+$/.test(size)) sizes.set(oid, Number(size));
    }
    return sizes;
  }

  /** Fetches many blobs in one round trip: noop negotiation, wants read from stdin. */
  async fetchBlobs(access: RemoteAccess, oids: string[]): Promise<void> {
    if (oids.length === 0) return;
    await withRetry(() =>
      runGit({
        args: ['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--no-recurse-submodules', '--stdin', REMOTE_NAME],
        gitDir: this.gitDir,
        access,
        extraConfig: [['fetch.negotiationAlgorithm', 'noop']],
        input: oids.join('\n') + '\n',
        timeoutMs: this.timeouts.fetchMs,
      }),
    );
  }

  /**
   * Fetches every blob of a commit in one transfer, as a clone would: the server reuses its
   * packed deltas, which it cannot for a list of blob ids. For readers that read everything.
   */
  async fetchCommitContents(access: RemoteAccess, commit: string, depth: number | undefined): Promise<void> {
    await withRetry(() =>
      runGit({
        args: ['fetch', '--quiet', '--refetch', '--no-tags', '--no-write-fetch-head', '--no-recurse-submodules', ...(depth ? [`--depth=${depth}`] : []), REMOTE_NAME, commit],
        gitDir: this.gitDir,
        access,
        withBlobs: true,
        timeoutMs: this.timeouts.fetchMs,
      }),
    );
  }

  /** A cat-file reader, the least busy of a small pool. */
  reader(): CatFileBatch {
    if (this.closed) throw new GitfsError('internal', `repository store ${this.gitDir} is closed`);
    if (this.readers.length < this.readersPerStore) {
      const idle = this.readers.find((r) => r.pending === 0);
      if (idle) return idle;
      const fresh = new CatFileBatch(this.gitDir);
      this.readers.push(fresh);
      return fresh;
    }
    return this.readers.reduce((a, b) => (b.pending < a.pending ? b : a));
  }

  close(): void {
    this.closed = true;
    for (const r of this.readers.splice(0)) r.close();
  }
}
