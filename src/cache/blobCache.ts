import { createReadStream, readdirSync, readSync, statSync } from 'node:fs';
import { mkdir, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CorruptObject, InvalidArgument, ObjectMissing } from '../errors/errors';
import { Logger, silentLogger } from '../log/logger';
import { blobHasher, isObjectId } from './objectHash';
import { Reservation, SegmentAppender, writeAt } from './segmentAppender';
import { HEADER_BYTES, indexEntry, INDEX_SUFFIX, readSegmentIndex, recordHeader, scanSegment, SegmentRecord, segmentIndexPath, segmentOfName, segmentPath, segmentsDirOf, writeSegmentIndex } from './segmentLayout';
import { SegmentReader } from './segmentReader';
import { BlobLocation, ServableBlobs } from './servableBlobs';

/** Reads `length` bytes of a blob's content from `offset` into `into` at `at`. */
export type ContentReader = (offset: number, length: number, into: Buffer, at: number) => void;

interface CachedBlob extends BlobLocation {
  /** Hashed and matched its id in this process: safe to serve. */
  verified: boolean;
  /** Read on the main thread since eviction last looked at it. */
  used: boolean;
}

interface Segment {
  /** Bytes of the file, live records or not. */
  bytes: number;
  /** Nothing more is written to it (its writer said so): it may be removed. */
  sealed: boolean;
  /** The blobs whose content the index finds here. */
  blobs: Set<string>;
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
  segments: number;
  evictions: number;
  /** Bytes of recently read blobs appended again when their segment was removed. */
  keptBytes: number;
  corruptDiscarded: number;
  /** Blobs and bytes brought into the cache by this process (fetched, or taken from a store). */
  blobsTaken: number;
  bytesTaken: number;
}

/** The shared table of verified blobs has a slot per this many bytes of budget (a 10 GiB cache: 46 MiB of slots, touched as they fill). */
const BYTES_PER_SERVABLE_SLOT = 16 * 1024;
/** Blobs up to this size are gathered in memory and written in one call. */
const SMALL_BLOB_BYTES = 1024 * 1024;
/** A segment is sealed once it holds this much, or a sixteenth of the budget: eviction removes whole segments. */
const SEGMENT_BYTES = 64 * 1024 * 1024;

/**
 * The node's content-addressed blob store, shared by every repository and volume: the same
 * blob in two forks is stored once. Blobs are records in append-only segment files (the format
 * is in segmentLayout); a blob enters the index only once its content hashed to its id, and a
 * record from an earlier run is hashed again the first time it is used in this run (never all at
 * start-up), so a corrupted copy is detected, dropped and refetched — never served.
 *
 * A byte budget is kept by removing the oldest sealed segment: the blobs in it that were read
 * since eviction last looked are appended again first (a second chance, as a clock would give),
 * counting only reads after the segment was sealed.
 * Cached blobs are read synchronously: the cache is never under a mount we serve, and a few
 * microseconds on the main thread beat a trip through libuv's thread pool per read.
 */
export class BlobCache {
  private readonly blobs = new Map<string, CachedBlob>();
  private readonly segments = new Map<number, Segment>();
  private verifying = new Map<string, Promise<boolean>>();
  private bytes = 0;
  private evictions = 0;
  private keptBytes = 0;
  private corruptDiscarded = 0;
  private blobsTaken = 0;
  private bytesTaken = 0;
  private evicting = false;
  /** The verified blobs and their locations, in memory that FUSE serving threads read too. */
  readonly servable: ServableBlobs;
  /** The main thread's reads. */
  readonly reader: SegmentReader;
  readonly segmentBytes: number;
  private readonly appender: SegmentAppender;

  private constructor(readonly dir: string, readonly maxBytes: number, private readonly log: Logger) {
    this.servable = ServableBlobs.allocate(dir, maxBytes / BYTES_PER_SERVABLE_SLOT);
    this.reader = new SegmentReader(this.servable);
    this.segmentBytes = Math.max(1, Math.min(SEGMENT_BYTES, Math.floor(maxBytes / 16)));
    this.appender = new SegmentAppender(this.servable, this.segmentBytes, (segment) => this.sealed(segment));
  }

  static async open(dir: string, maxBytes: number, log: Logger = silentLogger): Promise<BlobCache> {
    if (!Number.isFinite(maxBytes) || maxBytes <= 0) throw new InvalidArgument('cache-max-bytes', `${maxBytes} must be a positive number of bytes`);
    const cache = new BlobCache(dir, maxBytes, log);
    await cache.load();
    return cache;
  }

  stats(): BlobCacheStats {
    return { blobs: this.blobs.size, bytes: this.bytes, maxBytes: this.maxBytes, segments: this.segments.size, evictions: this.evictions, keptBytes: this.keptBytes, corruptDiscarded: this.corruptDiscarded, blobsTaken: this.blobsTaken, bytesTaken: this.bytesTaken };
  }

  has(oid: string): boolean {
    return this.blobs.has(oid);
  }

  sizeOf(oid: string): number | undefined {
    return this.blobs.get(oid)?.size;
  }

  /** Where a blob's content is: its segment file and range (for tests that damage a copy). */
  locationOf(oid: string): { path: string; offset: number; size: number } | undefined {
    const blob = this.blobs.get(oid);
    return blob && { path: segmentPath(this.dir, blob.segment), offset: blob.offset, size: blob.size };
  }

  /**
   * Runs `use` on a cached blob's verified content, synchronously; undefined when the blob is
   * absent or failed verification (it is then dropped, to be fetched again).
   */
  async use<T>(oid: string, use: (read: ContentReader, size: number) => T): Promise<T | undefined> {
    const found = this.blobs.get(oid);
    if (!found) return undefined;
    if (!found.verified && !(await this.verify(oid))) return undefined;
    const blob = this.blobs.get(oid); // the same, unless evicted meanwhile
    const fd = blob && this.reader.fileOf(blob.segment);
    if (!blob || fd === undefined) {
      this.forget(oid);
      return undefined;
    }
    blob.used = true;
    return use((offset, length, into, at) => {
      if (offset + length > blob.size || readSync(fd, into, at, length, blob.offset + offset) !== length) {
        throw new CorruptObject(oid, `the cached copy has no ${length} bytes at ${offset}`);
      }
    }, blob.size);
  }

  /** A cached blob's whole content (for blobs small enough to hold, such as delta bases). */
  async readWhole(oid: string): Promise<Buffer> {
    const content = await this.use(oid, (read, size) => {
      const whole = Buffer.allocUnsafe(size);
      read(0, size, whole, 0);
      return whole;
    });
    if (!content) throw new ObjectMissing(oid, `blob ${oid} is no longer in the cache`);
    return content;
  }

  writer(oid: string): BlobWriter {
    if (!isObjectId(oid)) throw new InvalidArgument('oid', `"${oid.slice(0, 80)}" is not a git object id`);
    let room: Reservation | undefined; // large blobs stream to their record
    let writes: Promise<void> = Promise.resolve();
    let chunks: Buffer[] | undefined; // small blobs gather in memory
    let hash: ReturnType<typeof blobHasher> | undefined;
    let expected = 0;
    let written = 0;
    return {
      start: (size) => {
        expected = size;
        hash = blobHasher(oid, size);
        if (size <= SMALL_BLOB_BYTES) {
          chunks = [];
          return;
        }
        const reserved = (room = this.appender.reserve(size));
        writes = writeAt(reserved.fd, [recordHeader(size)], reserved.at);
        writes.catch(() => undefined);
      },
      data: (chunk) => {
        hash!.update(chunk);
        if (chunks) {
          written += chunk.length;
          chunks.push(Buffer.from(chunk)); // the chunk's memory belongs to the stream
          return;
        }
        const reserved = room!;
        const position = reserved.at + HEADER_BYTES + written;
        written += chunk.length;
        if (written > expected) return; // more than announced: refused at the end, never written past its room
        writes = writes.then(() => writeAt(reserved.fd, [chunk], position));
        return writes;
      },
      finish: async () => {
        if (!hash) throw new CorruptObject(oid, 'no content was received');
        const actual = hash.digest('hex');
        if (written !== expected || actual !== oid) {
          await writes.catch(() => undefined);
          room?.written();
          throw new CorruptObject(oid, `received ${written} bytes hashing to ${actual}`);
        }
        if (chunks) return this.putVerified(oid, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
        const reserved = room!;
        try {
          await writes;
          await writeAt(reserved.fd, [recordHeader(expected, oid)], reserved.at);
        } catch (err) {
          reserved.written();
          throw err;
        }
        reserved.written(oid);
        this.add(oid, { segment: reserved.segment, offset: reserved.at + HEADER_BYTES, size: expected });
      },
      abort: async () => {
        await writes.catch(() => undefined);
        room?.written();
      },
    };
  }

  /**
   * Stores a whole blob whose id the caller has just computed from this very content (a pack's
   * objects are hashed as they are parsed): appended without a second hash.
   */
  async putVerified(oid: string, content: Buffer): Promise<void> {
    if (this.blobs.has(oid)) return;
    this.add(oid, await this.appender.append(oid, content));
  }

  /**
   * Takes in a blob that another thread of this process appended (with its own SegmentAppender),
   * its id computed from this very content as it was parsed.
   */
  adopt(oid: string, at: BlobLocation): void {
    this.add(oid, at);
  }

  /** Seals this thread's segment (its index written once its writes are done): what a graceful stop leaves needs no scan. */
  close(): void {
    this.appender.seal();
  }

  /**
   * A segment its writer (this thread's appender, or another thread's) writes nothing more to. Reads
   * of its blobs until now are forgotten: a blob read while its segment was still being written
   * was read by whatever fetched it (a scan, a prefetch), and only a read after earns it a second
   * chance, so a scan larger than the cache is not written twice.
   */
  sealed(number: number): void {
    const segment = this.counted(number, 0);
    segment.sealed = true;
    for (const oid of segment.blobs) {
      this.servable.takeTouched(oid);
      this.blobs.get(oid)!.used = false;
    }
    if (this.bytes > this.maxBytes) void this.evict();
  }

  /** Counts a record's bytes in its segment (known from now on). */
  private counted(number: number, recordBytes: number): Segment {
    let segment = this.segments.get(number);
    if (!segment) this.segments.set(number, (segment = { bytes: 0, sealed: false, blobs: new Set() }));
    segment.bytes += recordBytes;
    this.bytes += recordBytes;
    return segment;
  }

  /** Counts a verified record's bytes, and indexes its blob unless it is indexed already. */
  private add(oid: string, at: BlobLocation): void {
    const segment = this.counted(at.segment, HEADER_BYTES + at.size);
    const existing = this.blobs.get(oid);
    if (existing?.verified) return;
    if (existing) this.forget(oid);
    this.blobs.set(oid, { ...at, verified: true, used: false });
    segment.blobs.add(oid);
    this.servable.add(oid, at);
    this.blobsTaken++;
    this.bytesTaken += at.size;
    if (this.bytes > this.maxBytes) void this.evict();
  }

  /** Drops a blob from the index; its record stays until its segment goes. */
  private forget(oid: string): void {
    const blob = this.blobs.get(oid);
    if (!blob) return;
    this.servable.remove(oid);
    this.blobs.delete(oid);
    this.segments.get(blob.segment)?.blobs.delete(oid);
  }

  private verify(oid: string): Promise<boolean> {
    let running = this.verifying.get(oid);
    if (!running) {
      running = this.hashRecord(oid).finally(() => this.verifying.delete(oid));
      this.verifying.set(oid, running);
    }
    return running;
  }

  private async hashRecord(oid: string): Promise<boolean> {
    const blob = this.blobs.get(oid);
    if (!blob) return false;
    const hash = blobHasher(oid, blob.size);
    const fd = this.reader.fileOf(blob.segment);
    let read = 0;
    if (fd !== undefined && blob.size <= SMALL_BLOB_BYTES) {
      // In one synchronous read, as cached blobs are read: a stream's turns through the event loop
      // cost more than the read itself, and a scan after a restart verifies thousands.
      const content = Buffer.allocUnsafe(blob.size);
      read = readSync(fd, content, 0, blob.size, blob.offset);
      hash.update(content.subarray(0, read));
    } else if (fd !== undefined && blob.size > 0) {
      const stream = createReadStream(segmentPath(this.dir, blob.segment), { start: blob.offset, end: blob.offset + blob.size - 1 });
      try {
        for await (const chunk of stream) {
          read += (chunk as Buffer).length;
          hash.update(chunk as Buffer);
        }
      } catch {
        read = -1; // its segment went meanwhile, or cannot be read: fetched again
      }
    }
    if (this.blobs.get(oid) !== blob) return false; // evicted meanwhile: fetched again, not corrupt
    if (fd !== undefined && read === blob.size && hash.digest('hex') === oid) {
      blob.verified = true;
      this.servable.add(oid, blob);
      return true;
    }
    this.corruptDiscarded++;
    this.log.warn({ oid, segment: blob.segment }, 'cached blob failed verification; discarding it to fetch it again');
    this.forget(oid);
    return false;
  }

  /**
   * Removes the oldest sealed segments until the cache is within its budget: first giving their
   * recently read blobs a second chance, then, should those alone be over the budget, without.
   */
  private async evict(): Promise<void> {
    if (this.evicting) return;
    this.evicting = true;
    try {
      for (const secondChance of [true, false]) {
        for (const number of [...this.segments.keys()]) {
          const segment = this.segments.get(number);
          if (this.bytes <= this.maxBytes) return;
          if (segment?.sealed) await this.removeSegment(number, segment, secondChance);
        }
      }
    } finally {
      this.evicting = false;
    }
  }

  private async removeSegment(number: number, segment: Segment, secondChance: boolean): Promise<void> {
    for (const oid of [...segment.blobs]) {
      const blob = this.blobs.get(oid);
      if (blob?.segment !== number) continue; // forgotten or moved meanwhile
      if (secondChance && blob.verified && (blob.used || this.servable.takeTouched(oid))) {
        await this.keep(oid, blob).catch((err: Error) => this.log.warn({ oid, err }, 'could not keep a recently used blob; it will be fetched again'));
        if (this.blobs.get(oid)?.segment !== number) continue;
      }
      this.forget(oid);
      this.evictions++;
    }
    this.segments.delete(number);
    this.bytes -= segment.bytes;
    const path = segmentPath(this.dir, number);
    await unlink(path).catch(() => undefined);
    await unlink(segmentIndexPath(path)).catch(() => undefined);
    this.servable.segmentsRemoved();
  }

  /** Appends a recently used blob again, so that it outlives its old segment. */
  private async keep(oid: string, blob: CachedBlob): Promise<void> {
    const content = await this.readWhole(oid);
    blob.used = false; // its second chance is this copy
    const copy = await this.appender.append(oid, content);
    this.keptBytes += blob.size;
    if (this.blobs.get(oid) !== blob) return; // forgotten meanwhile: the copy is dead bytes
    this.segments.get(blob.segment)?.blobs.delete(oid);
    blob.segment = copy.segment;
    blob.offset = copy.offset;
    this.counted(copy.segment, HEADER_BYTES + blob.size).blobs.add(oid);
    this.servable.add(oid, blob);
  }

  /** Indexes what an earlier run left, oldest segment first; no hashing. */
  private async load(): Promise<void> {
    const segmentsDir = segmentsDirOf(this.dir);
    await mkdir(segmentsDir, { recursive: true });
    await this.dropFilePerBlobLayout();
    const names = new Set(readdirSync(segmentsDir));
    const numbers = [...names].map(segmentOfName).filter((n): n is number => n !== undefined).sort((a, b) => a - b);
    for (const name of names) {
      // An index whose segment is gone: its removal was cut short.
      if (name.endsWith(INDEX_SUFFIX) && !names.has(name.slice(0, -INDEX_SUFFIX.length))) await unlink(join(segmentsDir, name)).catch(() => undefined);
    }
    for (const number of numbers) {
      const path = segmentPath(this.dir, number);
      const fileBytes = statSync(path).size;
      const segment: Segment = { bytes: fileBytes, sealed: true, blobs: new Set() };
      this.segments.set(number, segment);
      this.bytes += fileBytes;
      for (const record of readSegmentIndex(path, fileBytes) ?? indexedScan(path, fileBytes)) {
        if (!record.oid) continue; // a placeholder
        const older = this.blobs.get(record.oid);
        if (older) this.segments.get(older.segment)!.blobs.delete(record.oid); // the later copy stays
        this.blobs.set(record.oid, { segment: number, offset: record.offset, size: record.size, verified: false, used: false });
        segment.blobs.add(record.oid);
      }
    }
    this.servable.segmentsFrom(numbers.length ? numbers[numbers.length - 1] + 1 : 0);
    if (this.bytes > this.maxBytes) await this.evict();
    this.log.info({ blobs: this.blobs.size, bytes: this.bytes, maxBytes: this.maxBytes }, 'blob cache loaded');
  }

  /** Versions before segment files kept a file per blob under `blobs/`: that cache is dropped, not read. */
  private async dropFilePerBlobLayout(): Promise<void> {
    const old = join(this.dir, 'blobs');
    if (!(await stat(old).catch(() => undefined))) return;
    this.log.info({ dir: old }, 'removing the blob cache of an earlier version (a file per blob); blobs are fetched again as they are read');
    rm(old, { recursive: true, force: true }).catch((err: Error) => this.log.warn({ dir: old, err }, 'could not remove the blob cache of an earlier version'));
  }
}

/** The records of a segment its writer never sealed, found by a scan; indexed for the next start. */
function indexedScan(path: string, fileBytes: number): SegmentRecord[] {
  const records = scanSegment(path, fileBytes);
  writeSegmentIndex(path, records.flatMap((r) => (r.oid ? [indexEntry(r.offset, r.size, r.oid)] : [])));
  return records;
}
