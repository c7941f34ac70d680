import { ChildProcess } from 'node:child_process';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GitfsError, RefNotFound } from '../errors/errors';
import { createBareRepository } from './bareRepository';
import { parseCommit } from './commitObject';
import { CatFileBatch } from './catFileBatch';
import { RemoteAccess, REMOTE_NAME } from './gitEnvironment';
import { GitRun, runGit, spawnGit } from './gitProcess';
import { noteReceived } from './receivedBytes';
import { isCommitId, ResolvedRef } from './remoteRefs';
import { recordFetch } from './fetchBookkeeping';
import { PackIndexer } from './packIndexer';
import { PackObject, PackParser } from './packParser';
import { withRetry } from './retry';
import { simpleGitFailure, simpleGitFor } from './simpleGitClient';
import { UploadPackClient } from './uploadPackClient';

/** Where each fetched commit gets a ref, which keeps it and says it is here. */
const COMMIT_REFS = 'refs/gitfs/commits';
/** Annotated tags fetched on their own, each under its object id. */
const TAG_REFS = 'refs/gitfs/tags';
/** Written before git first fetches into the store. */
const GIT_FETCHED_MARKER = 'gitfs-git-fetched';

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
  /** The object format this process created the store in (undefined when it found it on disk). */
  private createdAs: 'sha1' | 'sha256' | undefined;
  /** The commit fetchFirst brought in, if any. */
  private firstCommit: string | undefined;
  private commitFetches = Promise.resolve();
  /** Packs here before this process fetched, stored by our own client, or counted already. */
  private countedPacks: Promise<Set<string>> | undefined;
  private readonly readers: CatFileBatch[] = [];
  private closed = false;
  /** Whether git ever fetched into this store (a marker file says so across restarts). */
  private gitFetched: Promise<boolean> | undefined;

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
      // Known before the first read, whose stat would wait behind the node's other file work then.
      if (await this.exists()) return void this.mayHoldBlobs();
      await createBareRepository(this.gitDir, objectFormat);
      this.createdAs = objectFormat;
      this.gitFetched ??= Promise.resolve(false);
    })();
    this.ready.catch(() => (this.ready = undefined));
    return this.ready;
  }

  /**
   * The first fetch of a store that does not exist yet, started while the caller's access probe
   * runs, so the first volume of a remote on a node waits for one round trip instead of two: the
   * ref as named (default HEAD), in a store created as SHA-1 (the usual format; a SHA-256 remote
   * makes fetchCommit create the store again). Failures are ignored: fetchCommit, which runs after
   * this, fetches whatever the probe resolved that is still missing.
   */
  fetchFirst(access: RemoteAccess, ref: string | undefined, depth: number | undefined): void {
    if (this.ready) return;
    this.commitFetches = this.commitFetches.then(async () => {
      if (this.ready || (await this.exists())) return;
      await this.init('sha1');
      await this.gitFetch(access, [...(depth ? [`--depth=${depth}`] : []), REMOTE_NAME, `+${ref ?? 'HEAD'}:refs/gitfs/first`]);
      // A fresh ref is a loose file: read it rather than start another git process.
      this.firstCommit = (await readFile(join(this.gitDir, 'refs/gitfs/first'), 'utf8')).trim();
    }).catch(() => undefined);
  }

  /**
   * `git fetch` into this store, counting the packs it stores in gitfs_remote_received_bytes_total
   * (a pack is what the remote sent); our own client counts its bytes as they arrive.
   */
  private async gitFetch(access: RemoteAccess, args: string[], options: Pick<GitRun, 'extraConfig' | 'input' | 'withBlobs'> = {}): Promise<void> {
    const counted = await (this.countedPacks ??= this.packs());
    await this.markGitFetched();
    try {
      await runGit({ args: ['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--no-recurse-submodules', ...args], gitDir: this.gitDir, access, timeoutMs: this.timeouts.fetchMs, ...options });
    } finally {
      const dir = join(this.gitDir, 'objects', 'pack');
      for (const pack of await this.packs()) {
        if (counted.has(pack)) continue;
        counted.add(pack);
        noteReceived(new URL(access.remote.url).host, await stat(join(dir, pack)).then((s) => s.size, () => 0));
      }
    }
  }

  /** The store's pack files by name. */
  private async packs(): Promise<Set<string>> {
    const names = await readdir(join(this.gitDir, 'objects', 'pack')).catch(() => []);
    return new Set(names.filter((name) => name.endsWith('.pack')));
  }

  private exists(): Promise<boolean> {
    return stat(join(this.gitDir, 'HEAD')).then(() => true, () => false);
  }

  async hasCommit(commit: string): Promise<boolean> {
    // Every fetch here ends by writing the commit's ref: where the store or that ref is on disk,
    // the answer needs no git process.
    if (!(await this.exists())) return false;
    if (await stat(join(this.gitDir, COMMIT_REFS, commit)).then(() => true, () => false)) return true;
    try {
      await this.local().catFile(['-e', `${commit}^{commit}`]);
      return true;
    } catch {
      return false;
    }
  }

  /** When a local commit was made: its committer time, shown as every entry's timestamp. */
  async commitTime(commit: string): Promise<Date> {
    let text: string;
    try {
      text = await this.local().catFile(['commit', commit]);
    } catch (err) {
      throw simpleGitFailure(err, 'cat-file', this.gitDir);
    }
    return parseCommit(commit, text).committedAt;
  }

  /** simple-git in this store, for short local one-shot commands. */
  private local() {
    return simpleGitFor({ baseDir: this.gitDir, gitDir: this.gitDir, timeoutMs: this.timeouts.commandMs });
  }

  /**
   * Makes `resolved.commit` and its trees local (no blobs). Returns false when they already
   * were, so a second volume of the same commit costs no network at all.
   */
  fetchCommit(access: RemoteAccess, resolved: ResolvedRef, depth: number | undefined): Promise<boolean> {
    const run = this.commitFetches.then(async () => {
      await this.initAs(resolved.commit.length === 64 ? 'sha256' : 'sha1');
      if (this.firstCommit === resolved.commit || (await this.hasCommit(resolved.commit))) return false;
      const depthArgs = depth ? [`--depth=${depth}`] : [];
      const keep = `${COMMIT_REFS}/${resolved.commit}`;
      const byName = !isCommitId(resolved.refName);
      const source = byName ? resolved.refName : resolved.commit;
      await withRetry(() =>
        this.gitFetch(access, [...depthArgs, REMOTE_NAME, `+${source}:${keep}`]).catch((err) => {
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

  /**
   * The content of the annotated tag object `resolved.tag`, fetched (the tag alone: the store has
   * its commit) when a commit fetch by another ref left it out.
   */
  tagObject(access: RemoteAccess, resolved: ResolvedRef & { tag: string }): Promise<Buffer> {
    const read = () => runGit({ args: ['cat-file', 'tag', resolved.tag], gitDir: this.gitDir, timeoutMs: this.timeouts.commandMs }).then(({ stdout }) => stdout);
    const run = this.commitFetches.then(async () => {
      const local = await read().catch(() => undefined);
      if (local) return local;
      await withRetry(() => this.gitFetch(access, [REMOTE_NAME, `+${resolved.refName}:${TAG_REFS}/${resolved.tag}`]));
      return read().catch(() => {
        throw new GitfsError('transient', `tag ${resolved.refName} of ${access.remote.display} moved while fetching; retry`);
      });
    });
    this.commitFetches = run.then(() => undefined, () => undefined);
    return run;
  }

  /**
   * Fetches a commit and its trees with our own protocol-v2 client, handing each object to
   * `onObject` as the pack streams in while git index-pack stores the same bytes: the caller
   * indexes the trees from the transfer itself, with no git fetch and no ls-tree after it.
   * Resolves once the whole pack has been parsed, with the store's own completion (index-pack,
   * the ref) still to come in `stored`. Throws UseGitClient when the client cannot, for the
   * caller to fetch with git instead.
   */
  receiveCommit(client: UploadPackClient, resolved: ResolvedRef, depth: number | undefined, onObject: (object: PackObject) => void): Promise<{ stored: Promise<void> }> {
    const run = this.commitFetches.then(async () => {
      const objectFormat = await client.objectFormat();
      // Laid out while the server makes the pack.
      const initialized = this.initAs(objectFormat);
      initialized.catch(() => undefined);
      const parser = new PackParser({ objectFormat, onObject });
      let indexer: PackIndexer | undefined;
      try {
        // An annotated tag comes in the same pack as its commit, for the volume's .git to show.
        const { shallow } = await client.fetch({ wants: resolved.tag ? [resolved.commit, resolved.tag] : [resolved.commit], depth, filter: 'blob:none' }, async (chunk) => {
          // Started with the first bytes: a failed request never starts git at all.
          if (!indexer) {
            await initialized;
            indexer = new PackIndexer(this.gitDir, this.timeouts.fetchMs);
          }
          const stored = indexer.write(chunk);
          await parser.push(chunk);
          await stored;
        });
        await parser.end();
        const stored = indexer!.finish().then(async (pack) => {
          (await (this.countedPacks ??= this.packs())).add(pack);
          await recordFetch(this.gitDir, `${COMMIT_REFS}/${resolved.commit}`, resolved.commit, shallow);
        });
        stored.catch(() => undefined);
        return { stored };
      } catch (err) {
        await indexer?.abort();
        throw err;
      }
    });
    // The next commit fetch of this store waits for this one to be stored, not just parsed.
    this.commitFetches = run.then((r) => r.stored).then(() => undefined, () => undefined);
    return run;
  }

  /** Creates the store in `format`, or again in it when fetchFirst guessed SHA-1 for a SHA-256 remote (it holds nothing yet). */
  private async initAs(format: 'sha1' | 'sha256'): Promise<void> {
    await this.init(format);
    if (this.createdAs && this.createdAs !== format) {
      await rm(this.gitDir, { recursive: true, force: true });
      this.ready = undefined;
      this.gitFetched = undefined;
      await this.init(format);
    }
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
    await withRetry(() => this.gitFetch(access, ['--stdin', REMOTE_NAME], { extraConfig: [['fetch.negotiationAlgorithm', 'noop']], input: oids.join('\n') + '\n' }));
  }

  /**
   * Fetches every blob of a commit in one transfer, as a clone would: the server reuses its
   * packed deltas, which it cannot for a list of blob ids. For readers that read everything.
   */
  async fetchCommitContents(access: RemoteAccess, commit: string, depth: number | undefined): Promise<void> {
    await withRetry(() => this.gitFetch(access, ['--refetch', ...(depth ? [`--depth=${depth}`] : []), REMOTE_NAME, commit], { withBlobs: true }));
  }

  /**
   * Whether blobs may be here: only git's fetches bring them (by id, a whole commit's, or from a
   * server that ignores the blob filter); our own client streams blobs into the cache. A store git
   * never fetched into is not asked for blobs (no cat-file process to start).
   */
  mayHoldBlobs(): Promise<boolean> {
    this.gitFetched ??= stat(join(this.gitDir, GIT_FETCHED_MARKER)).then(() => true, () => false);
    return this.gitFetched;
  }

  private async markGitFetched(): Promise<void> {
    if (await this.mayHoldBlobs()) return;
    await writeFile(join(this.gitDir, GIT_FETCHED_MARKER), '');
    this.gitFetched = Promise.resolve(true);
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
