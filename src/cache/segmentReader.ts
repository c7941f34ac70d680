import { closeSync, openSync, readSync } from 'node:fs';
import { segmentPath } from './segmentLayout';
import { BlobLocation, ServableBlobs } from './servableBlobs';

/** Segment files a thread keeps open at most (a 10 GiB cache has 160). */
const MAX_OPEN_SEGMENTS = 256;

/**
 * One thread's reads of cached blobs: segment files stay open between reads (a read of a cached
 * blob is one pread), and are all closed once any segment was removed, so a removed segment's
 * space is not held for long.
 */
export class SegmentReader {
  private readonly files = new Map<number, number>();
  private removals: number;
  private readonly located: BlobLocation = { segment: 0, offset: 0, size: 0 };

  constructor(readonly servable: ServableBlobs) {
    this.removals = servable.removals();
  }

  /**
   * Reads up to `length` bytes from `position` of a verified blob into `out`: the bytes read, or -1
   * when the blob is not known to be verified here (the main thread's to find or fetch).
   */
  readVerified(oid: Uint8Array, oidAt: number, position: number, length: number, out: Buffer, outAt: number): number {
    if (!this.servable.locate(oid, oidAt, this.located)) return -1;
    return this.readAt(this.located, position, length, out, outAt);
  }

  /** Reads up to `length` bytes from `position` of the blob at a location: the bytes read, or -1 when its segment is gone. */
  readAt(at: BlobLocation, position: number, length: number, out: Uint8Array, outAt: number): number {
    const fd = this.fileOf(at.segment);
    if (fd === undefined) return -1;
    const wanted = Math.max(0, Math.min(length, at.size - position));
    return wanted === 0 ? 0 : readSync(fd, out, outAt, wanted, at.offset + position);
  }

  /** An open descriptor of a segment, or undefined when it is gone. */
  fileOf(segment: number): number | undefined {
    const removals = this.servable.removals();
    if (removals !== this.removals) this.closeAll(removals);
    let fd = this.files.get(segment);
    if (fd !== undefined) return fd;
    try {
      fd = openSync(segmentPath(this.servable.memory.dir, segment), 'r');
    } catch {
      return undefined;
    }
    if (this.files.size >= MAX_OPEN_SEGMENTS) {
      const [oldest, oldestFd] = this.files.entries().next().value as [number, number];
      closeSync(oldestFd);
      this.files.delete(oldest);
    }
    this.files.set(segment, fd);
    return fd;
  }

  private closeAll(removals: number): void {
    this.removals = removals;
    for (const fd of this.files.values()) closeSync(fd);
    this.files.clear();
  }
}
