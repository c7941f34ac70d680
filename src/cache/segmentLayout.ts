import { closeSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
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
 *
 * A sealed segment has an index beside it (`<segment>.idx`): for each blob record, where its
 * content starts (u64) and its header. A restart reads the indexes, not the segments; a segment
 * without one (its writer ended without sealing it) is scanned instead. Neither is trusted further
 * than the index itself: every blob is hashed on its first use.
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

export const INDEX_SUFFIX = '.idx';

export function segmentIndexPath(segmentFile: string): string {
  return segmentFile + INDEX_SUFFIX;
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

const INDEX_ENTRY_BYTES = 8 + HEADER_BYTES;

/** A sealed segment's index entry for the blob record whose content starts at `offset`. */
export function indexEntry(offset: number, size: number, oid: string): Buffer {
  const entry = Buffer.allocUnsafe(INDEX_ENTRY_BYTES);
  entry.writeUInt32LE(offset % 2 ** 32, 0);
  entry.writeUInt32LE(Math.floor(offset / 2 ** 32), 4);
  recordHeader(size, oid).copy(entry, 8);
  return entry;
}

/** Writes a sealed segment's index; should that fail, the next start scans the segment instead. */
export function writeSegmentIndex(segmentFile: string, entries: Buffer[]): void {
  try {
    writeFileSync(segmentIndexPath(segmentFile), Buffer.concat(entries));
  } catch {
    // Scanned at the next start.
  }
}

export interface SegmentRecord {
  /** Undefined for a placeholder. */
  oid: string | undefined;
  /** Where the content starts in the segment. */
  offset: number;
  size: number;
}

/**
 * The blob records a sealed segment's index lists, or undefined when it has none or one that is not
 * whole (the segment is then scanned).
 */
export function readSegmentIndex(segmentFile: string, fileBytes: number): SegmentRecord[] | undefined {
  let index: Buffer;
  try {
    index = readFileSync(segmentIndexPath(segmentFile));
  } catch {
    return undefined;
  }
  if (index.length % INDEX_ENTRY_BYTES !== 0) return undefined;
  const records: SegmentRecord[] = [];
  for (let at = 0; at < index.length; at += INDEX_ENTRY_BYTES) {
    const header = parseHeader(index, at + 8);
    const offset = index.readUInt32LE(at + 4) * 2 ** 32 + index.readUInt32LE(at);
    if (!header?.oid || offset + header.size > fileBytes) return undefined;
    records.push({ oid: header.oid, offset, size: header.size });
  }
  return records;
}

/** A record header at `h`: its id (undefined for a placeholder) and size; undefined if it is none. */
function parseHeader(buffer: Buffer, h: number): { oid: string | undefined; size: number } | undefined {
  if (buffer.readUInt32LE(h) !== MAGIC) return undefined;
  const idLength = buffer[h + 4];
  if (idLength !== 0 && idLength !== 20 && idLength !== 32) return undefined;
  const size = buffer.readUInt32LE(h + 12) * 2 ** 32 + buffer.readUInt32LE(h + 8);
  return { oid: idLength ? buffer.toString('hex', h + ID_AT, h + ID_AT + idLength) : undefined, size };
}

/** Headers are read in windows this large, so a segment of small blobs costs few reads. */
const SCAN_WINDOW = 256 * 1024;

/**
 * The whole records of one segment, in order; the scan ends at the first header that is not
 * one or a record cut short (a crash mid-write).
 */
export function scanSegment(path: string, fileBytes: number): SegmentRecord[] {
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
      const header = parseHeader(window, at - windowAt);
      const offset = at + HEADER_BYTES;
      if (!header || offset + header.size > fileBytes) break;
      records.push({ oid: header.oid, offset, size: header.size });
      at = offset + header.size;
    }
  } finally {
    closeSync(fd);
  }
  return records;
}
