import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The cache's on-disk format. Blobs are records appended to segment files, each written by one
 * thread and never rewritten, so storing a blob creates no inode and reading one opens nothing
 * (docs/benchmarks.md: 8,000 small files cost 0.3–1.5 s of file creation on ext4, their appends
 * 0.06 s). A record is a header, then the blob's content:
 *
 *   u32 magic · u8 id length (0: a placeholder, no blob) · 3 bytes zero · u64 size · 32 bytes id
 *
 * A placeholder holds the room of a blob still streaming in (or one that failed verification);
 * its header is overwritten with the id once the content hashed to it.
 */
export const HEADER_BYTES = 48;
const MAGIC = 0x62667467;
const ID_AT = 16;

export function segmentsDirOf(cacheDir: string): string {
  return join(cacheDir, 'segments');
}

export function segmentPath(cacheDir: string, segment: number): string {
  return join(segmentsDirOf(cacheDir), segmentName(segment));
}

export function segmentName(segment: number): string {
  return segment.toString(16).padStart(8, '0');
}

/** The segment a file name stands for, or undefined for any other file. */
export function segmentOfName(name: string): number | undefined {
  return /^[0-9a-f]{8}$/.test(name) ? parseInt(name, 16) : undefined;
}

/** A record's header; without an id, a placeholder of `size` bytes. */
export function recordHeader(size: number, oid?: string): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt32LE(size % 2 ** 32, 8);
  header.writeUInt32LE(Math.floor(size / 2 ** 32), 12);
  if (oid) header[4] = header.write(oid, ID_AT, 'hex');
  return header;
}

export interface SegmentRecord {
  /** Undefined for a placeholder. */
  oid: string | undefined;
  /** Where the content starts in the segment. */
  offset: number;
  size: number;
}

/** Headers are read in windows this large, so a segment of small blobs costs few reads. */
const SCAN_WINDOW = 256 * 1024;

/**
 * The whole records of one segment, in order; the scan ends at the first header that is not
 * one or a record cut short (a crash mid-write), and returns where it ended.
 */
export function scanSegment(path: string, fileBytes: number): { records: SegmentRecord[]; end: number } {
  const records: SegmentRecord[] = [];
  const fd = openSync(path, 'r');
  const window = Buffer.allocUnsafe(SCAN_WINDOW);
  let windowAt = 0;
  let windowBytes = 0;
  let at = 0;
  try {
    while (at + HEADER_BYTES <= fileBytes) {
      if (at < windowAt || at + HEADER_BYTES > windowAt + windowBytes) {
        windowAt = at;
        windowBytes = readSync(fd, window, 0, SCAN_WINDOW, at);
        if (windowBytes < HEADER_BYTES) break;
      }
      const h = at - windowAt;
      if (window.readUInt32LE(h) !== MAGIC) break;
      const idLength = window[h + 4];
      const size = window.readUInt32LE(h + 12) * 2 ** 32 + window.readUInt32LE(h + 8);
      const offset = at + HEADER_BYTES;
      if (offset + size > fileBytes || (idLength !== 0 && idLength !== 20 && idLength !== 32)) break;
      records.push({ oid: idLength ? window.toString('hex', h + ID_AT, h + ID_AT + idLength) : undefined, offset, size });
      at = offset + size;
    }
  } finally {
    closeSync(fd);
  }
  return { records, end: at };
}
