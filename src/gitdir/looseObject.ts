/**
 * A git loose object (`objects/xx/yyyy…`: zlib of "<type> <size>\0" and the content) whose file
 * size follows from the content's size alone, so a blob can be listed and stat'ed before its
 * content is on the node: the zlib stream is made of stored (uncompressed) deflate blocks,
 * which every zlib reader inflates. Git checks the stream's trailing Adler-32 and the object id;
 * both come out right because the bytes inside are the object's own.
 */

const MAX_STORED_BLOCK = 65535;
const ZLIB_HEADER = Buffer.of(0x78, 0x01); // deflate, 32 KiB window, no dictionary, check bits
const BLOCK_HEADER = 5; // BFINAL/BTYPE=00 byte, LEN, NLEN
const ADLER_BYTES = 4;

/** The ids of the empty blob (SHA-1, SHA-256): no cache holds it, and no fetch is needed for it. */
const EMPTY_BLOBS: ReadonlySet<string> = new Set(['e69de29bb2d1d6434b8b29ae775ad8c2e48c5391', '473a0f4c3be8a93681a267e3b1e9a7dcda1185436fe141f7749120a303721813']);

export function isEmptyBlob(oid: string): boolean {
  return EMPTY_BLOBS.has(oid);
}

/** The object header git hashes and stores before the content. */
export function objectHeader(type: 'blob' | 'tree' | 'commit' | 'tag', size: number): Buffer {
  return Buffer.from(`${type} ${size}\0`, 'latin1');
}

/** The loose object file's size for an object of `type` and `size` content bytes. */
export function looseObjectSize(type: 'blob', size: number): number {
  const inflated = objectHeader(type, size).length + size;
  return ZLIB_HEADER.length + inflated + BLOCK_HEADER * Math.max(1, Math.ceil(inflated / MAX_STORED_BLOCK)) + ADLER_BYTES;
}

/** The loose object file of a blob: exactly `looseObjectSize('blob', content.length)` bytes. */
export function looseObject(type: 'blob', content: Buffer): Buffer {
  const header = objectHeader(type, content.length);
  const inflated = header.length + content.length;
  const out = Buffer.allocUnsafe(looseObjectSize(type, content.length));
  ZLIB_HEADER.copy(out, 0);
  let at = ZLIB_HEADER.length;
  let adlerA = 1;
  let adlerB = 0;
  for (let done = 0; done < inflated; ) {
    const length = Math.min(MAX_STORED_BLOCK, inflated - done);
    out[at] = done + length === inflated ? 1 : 0;
    out.writeUInt16LE(length, at + 1);
    out.writeUInt16LE(~length & 0xffff, at + 3);
    at += BLOCK_HEADER;
    const blockStart = at;
    for (let copied = 0; copied < length; ) {
      // The block may start in the header and end in the content.
      const offset = done + copied;
      const source = offset < header.length ? header : content;
      const from = offset < header.length ? offset : offset - header.length;
      const take = Math.min(length - copied, source.length - from);
      source.copy(out, at, from, from + take);
      at += take;
      copied += take;
    }
    [adlerA, adlerB] = adler32(out, blockStart, at, adlerA, adlerB);
    done += length;
  }
  out.writeUInt32BE(((adlerB << 16) | adlerA) >>> 0, at);
  return out;
}

const ADLER_MOD = 65521;
/** Bytes summed between reductions: zlib's NMAX, which keeps the sums exact integers. */
const ADLER_RUN = 5552;

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
