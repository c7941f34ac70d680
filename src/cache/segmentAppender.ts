import { closeSync, openSync, write, writev, writevSync } from 'node:fs';
import { HEADER_BYTES, indexEntry, recordHeader, segmentPath, writeSegmentIndex } from './segmentLayout';
import { BlobLocation, ServableBlobs } from './servableBlobs';

interface OpenSegment {
  segment: number;
  fd: number;
  end: number;
  /** Records reserved and not yet written. */
  writing: number;
  sealed: boolean;
  /** The index entries of its blob records, written beside it once it is sealed and its writes are done. */
  index: Buffer[];
}

/** Room for one record in a segment, written by whoever reserved it. */
export interface Reservation {
  segment: number;
  fd: number;
  /** Where the header goes; the content follows it. */
  at: number;
  /**
   * Says the record is written, with the id its header carries (none for a placeholder, or a write
   * abandoned): a sealed segment's file is closed, and its index written, after its last one.
   */
  written(oid?: string): void;
}

/**
 * The segment files one thread appends to: it reserves room for each record at the end of its
 * current segment, and starts a new one once that one holds `targetBytes`. The old one is sealed:
 * once its last write is done, its file is closed, its index written and `onSealed` told (from
 * then on eviction may remove it). Segment numbers come from the counter every thread shares, and
 * a file is created exclusively, so two writers (two threads, or a process and its successor)
 * never share one.
 */
export class SegmentAppender {
  private current: OpenSegment | undefined;

  constructor(private readonly servable: ServableBlobs, private readonly targetBytes: number, private readonly onSealed: (segment: number) => void) {}

  reserve(size: number): Reservation {
    if (this.current && this.current.end >= this.targetBytes) this.seal();
    const open = (this.current ??= this.create());
    const at = open.end;
    open.end += HEADER_BYTES + size;
    open.writing++;
    let done = false;
    return {
      segment: open.segment,
      fd: open.fd,
      at,
      written: (oid) => {
        if (done) return;
        done = true;
        if (oid) open.index.push(indexEntry(at + HEADER_BYTES, size, oid));
        open.writing--;
        if (open.sealed && open.writing === 0) this.finish(open);
      },
    };
  }

  /** Appends a whole blob whose content is at hand, synchronously (a thread that serves nothing else); where it is. */
  appendSync(oid: string, content: Uint8Array): BlobLocation {
    const room = this.reserve(content.length);
    try {
      writevSync(room.fd, [recordHeader(content.length, oid), content], room.at);
    } catch (err) {
      room.written();
      throw err;
    }
    return this.appended(room, oid, content.length);
  }

  /** Appends a whole blob whose content is at hand, through libuv's thread pool; where it is. */
  async append(oid: string, content: Buffer): Promise<BlobLocation> {
    const room = this.reserve(content.length);
    try {
      await writeAt(room.fd, [recordHeader(content.length, oid), content], room.at);
    } catch (err) {
      room.written();
      throw err;
    }
    return this.appended(room, oid, content.length);
  }

  private appended(room: Reservation, oid: string, size: number): BlobLocation {
    room.written(oid);
    return { segment: room.segment, offset: room.at + HEADER_BYTES, size };
  }

  /** Ends the current segment: nothing more is appended to it. */
  seal(): void {
    const open = this.current;
    if (!open) return;
    this.current = undefined;
    open.sealed = true;
    if (open.writing === 0) this.finish(open);
  }

  private finish(open: OpenSegment): void {
    closeSync(open.fd);
    writeSegmentIndex(segmentPath(this.servable.memory.dir, open.segment), open.index);
    this.onSealed(open.segment);
  }

  private create(): OpenSegment {
    for (;;) {
      const segment = this.servable.newSegment();
      try {
        return { segment, fd: openSync(segmentPath(this.servable.memory.dir, segment), 'wx'), end: 0, writing: 0, sealed: false, index: [] };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
  }
}

/** Writes buffers at a position, through libuv's thread pool (fs/promises' FileHandle costs more per call). */
export function writeAt(fd: number, buffers: Buffer[], position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null) => (err ? reject(err) : resolve());
    if (buffers.length === 1) write(fd, buffers[0], 0, buffers[0].length, position, done);
    else writev(fd, buffers, position, done);
  });
}
