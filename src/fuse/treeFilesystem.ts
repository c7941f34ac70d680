import { readFileSync, readSync } from 'node:fs';
import type { Operations, Stat, Statfs } from 'fuse-native';
import { CorruptObject, NotReady } from '../errors/errors';
import { Priority } from '../hydrate/blobSource';
import { Hydrator } from '../hydrate/hydrator';
import { Logger, silentLogger } from '../log/logger';
import { EntryKind, UNKNOWN_SIZE } from '../tree/treeIndex';
import { EBADF, EINVAL, EISDIR, ENOENT, EROFS, errnoOf } from './errno';
import { MountedTree } from './mountedTree';
import { ReadinessGate } from './readinessGate';
import { withinDeadline } from './deadline';
import { DEFAULT_PREFETCH, PrefetchOptions, ReadPrefetcher } from './readPrefetcher';

export interface FilesystemOptions {
  /** Longest an operation waits at the readiness gate before failing with EIO. */
  gateWaitMs: number;
  /** Longest an open waits for its blob to hydrate before failing with EIO. */
  readWaitMs: number;
  prefetch: PrefetchOptions;
}

// The gate wait stays under kubelet-visible stalls; the read wait leaves room for a large blob.
export const DEFAULT_FILESYSTEM_OPTIONS: FilesystemOptions = { gateWaitMs: 10_000, readWaitMs: 60_000, prefetch: DEFAULT_PREFETCH };

interface OpenBlob {
  oid: string;
  /** The cached blob's descriptor; null for empty files: nothing to read, nothing to fetch. */
  fd: number | null;
}

const WRITE_FLAGS = 0o1 | 0o2 | 0o100 | 0o1000 | 0o2000; // O_WRONLY O_RDWR O_CREAT O_TRUNC O_APPEND
/** What each kind of entry shows as: git's modes, owned by root, readable by all. */
const MODE_OF: Record<EntryKind, number> = {
  [EntryKind.Directory]: 0o40755,
  [EntryKind.Gitlink]: 0o40755,
  [EntryKind.File]: 0o100644,
  [EntryKind.Executable]: 0o100755,
  [EntryKind.Symlink]: 0o120777,
};
/** Only the type bits of a readdir entry's mode reach the kernel; one shared object per kind. */
const TYPE_OF: Record<EntryKind, { mode: number }> = Object.fromEntries(Object.entries(MODE_OF).map(([kind, mode]) => [kind, { mode }])) as Record<EntryKind, { mode: number }>;
/** A directory's entries for readdir: names, and beside each its type. */
interface Children {
  names: string[];
  types: Array<{ mode: number }>;
}
const ROOT_STAT_BEFORE_READY: Stat = { mode: 0o40755, uid: 0, gid: 0, size: 4096, nlink: 2, atime: 0, mtime: 0, ctime: 0 };

/**
 * The read-only filesystem of one commit, as fuse-native operations. Everything but getattr
 * of the root and statfs waits at the readiness gate; content is hydrated on open through
 * the node-wide hydrator and served from the shared cache. Nothing here blocks the event
 * loop or runs a synchronous child process: this process serves the mount.
 */
export class TreeFilesystem {
  private readonly open = new Map<number, OpenBlob>();
  private nextHandle = 1;
  private readonly prefetcher: ReadPrefetcher;

  constructor(
    private gate_: ReadinessGate<MountedTree>,
    private readonly hydrator: Hydrator,
    private readonly options: FilesystemOptions = DEFAULT_FILESYSTEM_OPTIONS,
    private readonly log: Logger = silentLogger,
  ) {
    this.prefetcher = new ReadPrefetcher(hydrator, options.prefetch);
  }

  get gate(): ReadinessGate<MountedTree> {
    return this.gate_;
  }

  /** A retried preparation brings a new gate; operations from now on wait on it. */
  useGate(gate: ReadinessGate<MountedTree>): void {
    this.gate_ = gate;
  }

  /** The longest any operation can take, so fuse-native's own timeout never fires first. */
  get longestOperationMs(): number {
    return this.options.gateWaitMs + this.options.readWaitMs + 5_000;
  }

  operations(): Operations {
    const reply = <T>(cb: (errno: number, value?: T) => void, work: () => Promise<T>, op: string, path: string) => {
      work().then(
        (value) => cb(0, value),
        (err) => {
          const errno = typeof err === 'number' ? err : errnoOf(err);
          if (typeof err !== 'number') this.log.warn({ op, path, err }, 'filesystem operation failed');
          cb(errno);
        },
      );
    };
    const readOnly = (...args: unknown[]) => (args[args.length - 1] as (errno: number) => void)(EROFS);
    return {
      // getattr and readdir answer synchronously once the tree is ready: they are most of a walk.
      getattr: (path, cb) => {
        const tree = this.gate.value;
        if (tree) {
          const entry = tree.index.lookup(path);
          if (entry < 0) return cb(ENOENT);
          if (tree.index.size(entry) !== UNKNOWN_SIZE) return cb(0, this.statOf(tree, entry));
        } else if (path === '/') {
          return cb(0, ROOT_STAT_BEFORE_READY);
        }
        reply(cb, () => this.getattr(path), 'getattr', path);
      },
      readdir: (path, cb) => {
        const tree = this.gate.value;
        const list = (errno: number, children?: Children) => (children ? cb(0, children.names, children.types) : cb(errno));
        if (!tree) return reply(list, () => this.readdir(path), 'readdir', path);
        try {
          list(0, this.childrenOf(tree, path));
        } catch (err) {
          cb(typeof err === 'number' ? err : errnoOf(err));
        }
      },
      open: (path, flags, cb) => {
        if (flags & WRITE_FLAGS) return cb(EROFS);
        reply(cb, () => this.openFile(path), 'open', path);
      },
      // Reads and releases hit the local cache file: answered synchronously, no thread hop.
      read: (path, fd, buffer, length, position, cb) => {
        const blob = this.open.get(fd);
        if (!blob) return cb(EBADF);
        if (blob.fd === null) return cb(0);
        try {
          cb(readSync(blob.fd, buffer, 0, length, position));
        } catch (err) {
          this.log.warn({ op: 'read', path, err }, 'reading cached blob failed');
          cb(errnoOf(err));
        }
      },
      release: (_path, fd, cb) => {
        const blob = this.open.get(fd);
        this.open.delete(fd);
        if (blob?.fd != null) this.hydrator.cache.close(blob.oid, blob.fd);
        cb(0);
      },
      readlink: (path, cb) => reply(cb, () => this.readlink(path), 'readlink', path),
      statfs: (_path, cb) => cb(0, this.statfs()),
      write: readOnly,
      create: readOnly,
      truncate: readOnly,
      ftruncate: readOnly,
      unlink: readOnly,
      mkdir: readOnly,
      rmdir: readOnly,
      rename: readOnly,
      link: readOnly,
      symlink: readOnly,
      chmod: readOnly,
      chown: readOnly,
      utimens: readOnly,
      setxattr: readOnly,
      removexattr: readOnly,
      mknod: readOnly,
    };
  }

  private async ready(): Promise<MountedTree> {
    return this.gate.wait(this.options.gateWaitMs);
  }

  private async resolve(path: string): Promise<{ tree: MountedTree; entry: number }> {
    const tree = await this.ready();
    const entry = tree.index.lookup(path);
    if (entry < 0) throw ENOENT;
    return { tree, entry };
  }

  private async getattr(path: string): Promise<Stat> {
    const { tree, entry } = await this.resolve(path);
    if (tree.index.size(entry) === UNKNOWN_SIZE) await tree.sizes.wait(this.options.gateWaitMs);
    return this.statOf(tree, entry);
  }

  private statOf(tree: MountedTree, entry: number): Stat {
    const index = tree.index;
    const kind = index.kind(entry);
    const time = tree.commitTime;
    const base = { uid: 0, gid: 0, atime: time, mtime: time, ctime: time, ino: entry + 1 };
    const mode = MODE_OF[kind];
    switch (kind) {
      case EntryKind.Directory:
      case EntryKind.Gitlink:
        return { ...base, mode, size: 4096, nlink: 2 };
      case EntryKind.Symlink:
        return { ...base, mode, size: index.size(entry), nlink: 1 };
      default: {
        const size = index.size(entry);
        return { ...base, mode, size, nlink: 1, blksize: 4096, blocks: Math.ceil(size / 512) };
      }
    }
  }

  private async readdir(path: string): Promise<Children> {
    return this.childrenOf(await this.ready(), path);
  }

  /**
   * A directory's names, each with its file type: the kernel hands the type to readdir's callers
   * (d_type), so `find -type f`, `ls --color` or a module resolver need no stat per entry.
   */
  private childrenOf(tree: MountedTree, path: string): Children {
    const entry = tree.index.lookup(path);
    if (entry < 0) throw ENOENT;
    const kind = tree.index.kind(entry);
    if (kind === EntryKind.Gitlink) return { names: [], types: [] };
    if (kind !== EntryKind.Directory) throw EISDIR;
    this.prefetcher.onReaddir(tree, entry);
    const names: string[] = [];
    const types: Array<{ mode: number }> = [];
    for (const child of tree.index.childrenOf(entry)) {
      names.push(tree.index.names[child]);
      types.push(TYPE_OF[tree.index.kind(child)]);
    }
    return { names, types };
  }

  private async openFile(path: string): Promise<number> {
    const { tree, entry } = await this.resolve(path);
    const kind = tree.index.kind(entry);
    if (kind === EntryKind.Directory || kind === EntryKind.Gitlink) throw EISDIR;
    const oid = tree.index.oid(entry);
    const blobFd = tree.index.size(entry) === 0 ? null : await this.openBlob(tree, entry);
    const handle = this.nextHandle++;
    this.open.set(handle, { oid, fd: blobFd });
    return handle;
  }

  /** Opens the cached blob, hydrating it first when cold; a copy that fails verification is fetched once more. */
  private async openBlob(tree: MountedTree, entry: number): Promise<number> {
    const oid = tree.index.oid(entry);
    for (let attempt = 0; attempt < 2; attempt++) {
      const cached = await this.hydrator.cache.open(oid);
      if (cached !== undefined) return cached;
      if (attempt === 0) this.prefetcher.onColdRead(tree, entry);
      const hydrated = this.hydrator.hydrate(tree.source, oid, Priority.Read, Math.max(0, tree.index.size(entry)));
      await withinDeadline(hydrated, this.options.readWaitMs, () => new NotReady(`blob ${oid} did not arrive within ${this.options.readWaitMs} ms`));
    }
    throw new CorruptObject(oid, 'the cached copy could not be verified after refetching');
  }

  private async readlink(path: string): Promise<string> {
    const { tree, entry } = await this.resolve(path);
    if (tree.index.kind(entry) !== EntryKind.Symlink) throw EINVAL;
    const fd = await this.openBlob(tree, entry);
    try {
      return readFileSync(fd, 'utf8');
    } finally {
      this.hydrator.cache.close(tree.index.oid(entry), fd);
    }
  }

  private statfs(): Statfs {
    const tree = this.gate.value;
    const files = tree ? tree.index.count : 0;
    const blocks = tree ? Math.ceil(tree.index.totalBytes / 4096) : 0;
    return { bsize: 4096, frsize: 4096, blocks, bfree: 0, bavail: 0, files, ffree: 0, favail: 0, fsid: 0, flag: 1, namemax: 255 };
   }
}
