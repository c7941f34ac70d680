import type { ContentReader } from '../cache/blobCache';

/**
 * A git loose object (`objects/xx/yyyy…`: zlib of "<type> <size>\0" and the content) whose file
 * size follows from the content's size alone, so a blob can be listed and stat'ed before its
 * content is on the node: the zlib stream is made of stored (uncompressed) deflate blocks,
 * which every zlib reader inflates. Git checks the stream's trailing Adler-32 and the object id;
 * both come out right because the bytes inside are the object's own. Any range of the file is
 * made from the same range of the content, so a large blob is served without holding it.
 */

const MAX_STORED_BLOCK = 65535;
const ZLIB_HEADER = Buffer.of(0x78, 0x01); // deflate, 32 KiB window, no dictionary, check bits
const BLOCK_HEADER = 5; // BFINAL/BTYPE=00 byte, LEN, NLEN
const BLOCK = BLOCK_HEADER + MAX_STORED_BLOCK;
const ADLER_BYTES = 4;
const ADLER_MOD = 65521;
/** Bytes summed between reductions: zlib's NMAX, which keeps the sums exact integers. */
const ADLER_RUN = 5552;

/** The ids of the empty blob (SHA-1, SHA-256): no cache holds it, and no fetch is needed for it. */
const EMPTY_BLOBS: ReadonlySet<string> = new Set(['e69de29bb2d1d6434b8b29ae775ad8c2e48c5391', '473a0f4c3be8a93681a267e3b1e9a7dcda1185436fe141f7749120a303721813']);

export function isEmptyBlob(oid: string): boolean {
  return EMPTY_BLOBS.has(oid);
}

/** The object header git hashes and stores before the content. */
export function objectHeader(type: 'blob' | 'tree' | 'commit' | 'tag', size: number): Buffer {
  return Buffer.from(`${type} ${size}\0`, 'latin1');
}

/** The loose object file's size for a blob of `size` content bytes. */
export function looseObjectSize(size: number): number {
  const inflated = objectHeader('blob', size).length + size;
  return ZLIB_HEADER.length + inflated + BLOCK_HEADER * Math.max(1, Math.ceil(inflated / MAX_STORED_BLOCK)) + ADLER_BYTES;
}

/**
 * Bytes `[position, position + length)` of a blob's loose object file into `out` at `at`, made from
 * the blob's `size` content bytes (read through `read`) and their Adler-32 (`adler32Of`, which covers
 * the object header too). Returns how many bytes were written (fewer only past the end of the file).
 */
export function readLooseObject(size: number, adler: number, read: ContentReader, position: number, length: number, out: Buffer, at: number): number {
  const header = objectHeader('blob', size);
  const inflated = header.length + size;
  const total = looseObjectSize(size);
  const end = Math.min(total, position + length);
  const start = at;
  for (let p = position; p < end; ) {
    if (p < ZLIB_HEADER.length) {
      out[at++] = ZLIB_HEADER[p++];
      continue;
    }
    if (p >= total - ADLER_BYTES) {
      out[at++] = (adler >>> (8 * (total - 1 - p))) & 0xff;
      p++;
      continue;
    }
    const block = Math.floor((p - ZLIB_HEADER.length) / BLOCK);
    const inBlock = (p - ZLIB_HEADER.length) % BLOCK;
    const blockLength = Math.min(MAX_STORED_BLOCK, inflated - block * MAX_STORED_BLOCK);
    if (inBlock < BLOCK_HEADER) {
      const last = (block + 1) * MAX_STORED_BLOCK >= inflated;
      const blockHeader = [last ? 1 : 0, blockLength & 0xff, blockLength >>> 8, ~blockLength & 0xff, (~blockLength >>> 8) & 0xff];
      out[at++] = blockHeader[inBlock];
      p++;
      continue;
    }
    // A run of the inflated object: the header's bytes, then the content's.
    const from = block * MAX_STORED_BLOCK + inBlock - BLOCK_HEADER;
    const run = Math.min(end - p, blockLength - (inBlock - BLOCK_HEADER));
    const fromHeader = Math.max(0, Math.min(run, header.length - from));
    if (fromHeader > 0) header.copy(out, at, from, from + fromHeader);
    if (run > fromHeader) read(from + fromHeader - header.length, run - fromHeader, out, at + fromHeader);
    at += run;
    p += run;
  }
  return at - start;
}

/** The Adler-32 of a blob's inflated loose object (header and content), reading the content in pieces. */
export function adler32Of(size: number, read: ContentReader): number {
  const header = objectHeader('blob', size);
  let [a, b] = adler32(header, 0, header.length, 1, 0);
  const chunk = Buffer.allocUnsafe(Math.min(size, 1 << 20));
  for (let offset = 0; offset < size; offset += chunk.length) {
    const length = Math.min(chunk.length, size - offset);
    read(offset, length, chunk, 0);
    [a, b] = adler32(chunk, 0, length, a, b);
  }
  return ((b << 16) | a) >>> 0;
}

function adler32(bytes: Buffer, start: number, end: number, a: number, b: number): [number, number] {
  for (let at = start; at < end; ) {
    const runEnd = Math.min(end, at + ADLER_RUN);
    for (; at < runEnd; at++) {
      a += bytes[at];
      b += a;
    }
    a %= ADLER_MOD;
    b %= ADLER_MOD;
  }
  return [a, b];
}
