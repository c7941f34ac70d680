import { closeSync, createReadStream, openSync, readFileSync, writeFile as writeFileCallback } from 'node:fs';
import { FileHandle, mkdir, open, readdir, readFile, rename, rm, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { CorruptObject, InvalidArgument } from '../errors/errors';
import { Logger, silentLogger } from '../log/logger';
import { blobPath, TEMP_PREFIX, tempBlobPath } from './blobFiles';
import { blobHasher, isObjectId } from './objectHash';
import { ServableBlobs } from './servableBlobs';

interface CachedBlob {
  size: number;
  /** Open readers; a pinned blob is never evicted. */
  pins: number;
  /** Hashed and matched its id in this process: safe to serve. */
  verified: boolean;
  /** When its mtime was last refreshed, so restart order approximates LRU without a write per read. */
  touchedAt: number;
}

/** Streams one blob into the cache; `finish` verifies it and makes it visible atomically. */
export interface BlobWriter {
  start(size: number): void;
  data(chunk: Buffer): Promise<void> | void;
  finish(): Promise<void>;
  abort(): Promise<void>;
}

export interface BlobCacheStats {
  blobs: number;
  bytes: number;
  maxBytes: number;
  evictions: number;
  corruptDiscarded: number;
  /** Blobs and bytes brought into the cache by this process (fetched, or taken from a store). */
  blobsTaken: number;
  bytesTaken: number;
}

const TOUCH_INTERVAL_MS = 10 * 60 * 1000;
/** The shared set of verified blobs has a slot per this many bytes of budget (a 10 GiB cache: 20 MiB of slots, touched as they fill). */
const BYTES_PER_SERVABLE_SLOT = 16 * 1024;
/** Blobs up to this size are gathered in memory and written in one call. */
const SMALL_BLOB_BYTES = 1024 * 1024;

/**
 * The node's content-addressed blob store, shared by every repository and volume: the same
 * blob in two forks is stored once. Files are written to a temporary name and renamed into
 * place only after their content hashed to their id; a file from an earlier run is hashed
 * again the first time it is opened in this run (never all at start-up), so a corrupted file
 * is detected, dropped and refetched — never served. A byte budget is kept by evicting the
 * least recently used blobs that nobody has open.
 *
 * Temporary files live beside their final name (the layout is in blobFiles).
 * Cached blobs are opened synchronously: the cache is never under a mount we serve, and a
 * few microseconds on the main thread beat a trip through libuv's thread pool per file.
 */
export class BlobCache {
  private readonly blobs = new Map<string, CachedBlob>(); // insertion order = LRU order
  private verifying = new Map<string, Promise<boolean>>();
  private bytes = 0;
  private evictions = 0;
  private corruptDiscarded = 0;
  private blobsTaken = 0;
  private bytesTaken = 0;
  /** Numbers temporary file names: cheaper than random ones, and unique within the process. */
  private tempFiles = 0;
  /** The verified blobs, in memory that FUSE serving threads read too. */
  readonly servable: ServableBlobs;

  private constructor(readonly dir: string, readonly maxBytes: number, private readonly log: Logger) {
    this.servable = ServableBlobs.allocate(maxBytes / BYTES_PER_SERVABLE_SLOT);
  }

  static async open(dir: string, maxBytes: number, log: Logger = silentLogger): Promise<BlobCache> {
    if (!Number.isFinite(maxBytes) || maxBytes <= 0) throw new InvalidArgument('cache-max-bytes', `${maxBytes} must be a positive number of bytes`);
    const cache = new BlobCache(dir, maxBytes, log);
    await cache.load();
    return cache;
  }

  stats(): BlobCacheStats {
    return { blobs: this.blobs.size, bytes: this.bytes, maxBytes: this.maxBytes, evictions: this.evictions, corruptDiscarded: this.corruptDiscarded, blobsTaken: this.blobsTaken, bytesTaken: this.bytesTaken };
  }

  has(oid: string): boolean {
    return this.blobs.has(oid);
  }

  sizeOf(oid: string): number | undefined {
    return this.blobs.get(oid)?.size;
  }

  pathOf(oid: string): string {
    return blobPath(this.dir, oid);
  }

  /**
   * Opens a cached blob for reading (a file descriptor) and pins it until `release`. Resolves
   * undefined when the blob is absent or failed verification (it is then dropped, to be
   * fetched again).
   */
  async open(oid: string): Promise<number | undefined> {
    const blob = this.blobs.get(oid);
    if (!blob) return undefined;
    blob.pins++;
    try {
      if (!blob.verified && !(await this.verify(oid))) {
        blob.pins--;
        return undefined;
      }
      const fd = openSync(this.pathOf(oid), 'r');
      this.touch(oid, blob);
      return fd;
    } catch (err) {
      blob.pins--;
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.forget(oid);
        return undefined;
      }
      throw err;
    }
  }

  /** Closes a descriptor from `open` and unpins its blob. */
  close(oid: string, fd: number): void {
    closeSync(fd);
    this.release(oid);
  }

  release(oid: string): void {
    const blob = this.blobs.get(oid);
    if (blob && blob.pins > 0) blob.pins--;
    if (this.bytes > this.maxBytes) void this.evict();
  }

  writer(oid: string): BlobWriter {
    if (!isObjectId(oid)) throw new InvalidArgument('oid', `"${oid.slice(0, 80)}" is not a git object id`);
    const tmp = this.tempPathOf(oid);
    let handle: Promise<FileHandle> | undefined; // large blobs stream to disk
    let chunks: Buffer[] | undefined; // small blobs gather in memory
    let hash: ReturnType<typeof blobHasher> | undefined;
    let expected = 0;
    let written = 0;
    return {
      start: (size) => {
        expected = size;
        hash = blobHasher(oid, size);
        if (size <= SMALL_BLOB_BYTES) chunks = [];
        else {
          handle = open(tmp, 'w');
          handle.catch(() => undefined);
        }
      },
      data: (chunk) => {
        hash!.update(chunk);
        written += chunk.length;
        if (chunks) {
          chunks.push(Buffer.from(chunk)); // the chunk's memory belongs to the stream
          return;
        }
        return handle!.then((fh) => fh.write(chunk)).then(() => undefined);
      },
      finish: async () => {
        if (!hash) throw new CorruptObject(oid, 'no content was received');
        if (handle) await (await handle).close();
        const actual = hash.digest('hex');
        if (written !== expected || actual !== oid) {
          await rm(tmp, { force: true });
          throw new CorruptObject(oid, `received ${written} bytes hashing to ${actual}`);
        }
        if (chunks) await writeWhole(tmp, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
        await rename(tmp, this.pathOf(oid));
        this.add(oid, expected, true);
      },
      abort: async () => {
        // Nothing was started, so nothing is on disk: no file operation to queue behind others.
        if (!hash) return;
        if (handle) await handle.then((fh) => fh.close()).catch(() => undefined);
        await rm(tmp, { force: true });
      },
    };
  }

  /**
   * Stores a whole blob whose id the caller has just computed from this very content (a pack's
   * objects are hashed as they are parsed): written and renamed into place without a second hash.
   */
  async putVerified(oid: string, content: Buffer): Promise<void> {
    if (this.blobs.has(oid)) return;
    const tmp = this.tempPathOf(oid);
    try {
      await writeWhole(tmp, content);
      await rename(tmp, this.pathOf(oid));
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    this.add(oid, content.length, true);
  }

  /**
   * Takes in a blob that another thread of this process wrote into place (with blobFiles), its
   * id computed from this very content as it was parsed.
   */
  adopt(oid: string, size: number): void {
    this.add(oid, size, true);
  }

  /** A cached blob's whole content (for blobs small enough to hold, such as delta bases). */
  readWhole(oid: string): Promise<Buffer> {
    return readFile(this.pathOf(oid));
  }

  /** Numbered tags, unique among this thread's writes (other threads tag theirs apart); a restart removes what is left. */
  private tempPathOf(oid: string): string {
    return tempBlobPath(this.dir, oid, String(++this.tempFiles));
  }

  private add(oid: string, size: number, verified: boolean): void {
    const existing = this.blobs.get(oid);
    if (verified) this.servable.add(oid);
    if (existing) {
      existing.verified ||= verified;
      return;
    }
    this.blobs.set(oid, { size, pins: 0, verified, touchedAt: Date.now() });
    this.bytes += size;
    this.blobsTaken++;
    this.bytesTaken += size;
    if (this.bytes > this.maxBytes) void this.evict();
  }

  private forget(oid: string): void {
    const blob = this.blobs.get(oid);
    if (!blob) return;
    this.servable.remove(oid);
    this.blobs.delete(oid);
    this.bytes -= blob.size;
  }

  private touch(oid: string, blob: CachedBlob): void {
    // Move to the most-recently-used end.
    this.blobs.delete(oid);
    this.blobs.set(oid, blob);
    const now = Date.now();
    if (now - blob.touchedAt > TOUCH_INTERVAL_MS) {
      blob.touchedAt = now;
      utimes(this.pathOf(oid), new Date(now), new Date(now)).catch(() => undefined);
    }
  }

  private verify(oid: string): Promise<boolean> {
    let running = this.verifying.get(oid);
    if (!running) {
      running = this.hashFile(oid).finally(() => this.verifying.delete(oid));
      this.verifying.set(oid, running);
    }
    return running;
  }

  private async hashFile(oid: string): Promise<boolean> {
    const blob = this.blobs.get(oid);
    if (!blob) return false;
    const path = this.pathOf(oid);
    let size: number;
    let hash: ReturnType<typeof blobHasher>;
    if (blob.size <= SMALL_BLOB_BYTES) {
      // In one synchronous read, as cached blobs are opened: a stream's turns through the event
      // loop cost more than the read itself, and a scan after a restart verifies thousands.
      const content = readFileSync(path);
      size = content.length;
      hash = blobHasher(oid, size).update(content);
    } else {
      size = (await stat(path)).size;
      hash = blobHasher(oid, size);
      for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    }
    if (size === blob.size && hash.digest('hex') === oid) {
      blob.verified = true;
      this.servable.add(oid);
      return true;
    }
    this.corruptDiscarded++;
    this.log.warn({ oid, path }, 'cached blob failed verification; discarding it to fetch it again');
    this.forget(oid);
    await unlink(path).catch(() => undefined);
    return false;
  }

  private async evict(): Promise<void> {
    // Least recently used first. A blob read by a serving thread since the last eviction, or added
    // since (a reader may be about to read it), gets a second chance: it moves to the recent end at
    // once, so everything older goes before it does (the iteration meets it again there).
    for (const [oid, blob] of this.blobs) {
      if (this.bytes <= this.maxBytes) break;
      if (blob.pins > 0) continue;
      if (this.servable.takeTouched(oid)) {
        this.touch(oid, blob);
        continue;
      }
      this.forget(oid);
      this.evictions++;
      await unlink(this.pathOf(oid)).catch(() => undefined);
    }
  }

  /** Indexes what an earlier run left: sizes from stat, order from mtime; no hashing. */
  private async load(): Promise<void> {
    await mkdir(join(this.dir, 'blobs'), { recursive: true });
    await Promise.all(Array.from({ length: 256 }, (_, i) => mkdir(join(this.dir, 'blobs', i.toString(16).padStart(2, '0')), { recursive: true })));
    // The 256 directories are read at once: one after another, they were most of a fresh mount's start.
    const prefixes = (await readdir(join(this.dir, 'blobs'))).filter((prefix) => /^[0-9a-f]{2}$/.test(prefix));
    const found = (await Promise.all(prefixes.map((prefix) => this.loadPrefix(prefix)))).flat();
    found.sort((a, b) => a.mtime - b.mtime);
    for (const f of found) {
      this.blobs.set(f.oid, { size: f.size, pins: 0, verified: false, touchedAt: f.mtime });
      this.bytes += f.size;
    }
    if (this.bytes > this.maxBytes) await this.evict();
    this.log.info({ blobs: this.blobs.size, bytes: this.bytes, maxBytes: this.maxBytes }, 'blob cache loaded');
  }

  /** The blobs of one prefix directory; temporary files of writes cut short are removed. */
  private async loadPrefix(prefix: string): Promise<Array<{ oid: string; size: number; mtime: number }>> {
    const found: Array<{ oid: string; size: number; mtime: number }> = [];
    for (const rest of await readdir(join(this.dir, 'blobs', prefix))) {
      if (rest.startsWith(TEMP_PREFIX)) {
        await unlink(join(this.dir, 'blobs', prefix, rest)).catch(() => undefined);
        continue;
      }
      const oid = prefix + rest;
      if (!isObjectId(oid)) continue;
      const info = await stat(join(this.dir, 'blobs', prefix, rest)).catch(() => undefined);
      if (info?.isFile()) found.push({ oid, size: info.size, mtime: info.mtimeMs });
    }
    return found;
  }
}

/**
 * fs.writeFile without fs/promises' FileHandle: the same three system calls, less work on
 * the main thread, which matters when a whole tree's small blobs are written at once.
 */
function writeWhole(path: string, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => writeFileCallback(path, data, (err) => (err ? reject(err) : resolve())));
}
