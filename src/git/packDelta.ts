import { GitfsError } from '../errors/errors';

/**
 * Applies a git pack delta to its base: two sizes (base, result) as little-endian base-128
 * numbers, then instructions that either copy a range of the base or insert literal bytes.
 */
export function applyDelta(base: Buffer, delta: Buffer): Buffer {
  let at = 0;
  const readSize = () => {
    let value = 0;
    let scale = 1;
    let byte: number;
    do {
      byte = delta[at++];
      value += (byte & 0x7f) * scale;
      scale *= 128;
    } while (byte & 0x80 && at < delta.length);
    return value;
  };
  const baseSize = readSize();
  const resultSize = readSize();
  if (baseSize !== base.length) throw corrupt(`its base has ${base.length} bytes, the delta expects ${baseSize}`);
  const result = Buffer.allocUnsafe(resultSize);
  let out = 0;
  while (at < delta.length) {
    const op = delta[at++];
    if (op & 0x80) {
      // Copy: bits 0-3 say which offset bytes follow, bits 4-6 which size bytes; size 0 means 64 KiB.
      let offset = 0;
      let size = 0;
      if (op & 0x01) offset = delta[at++];
      if (op & 0x02) offset |= delta[at++] << 8;
      if (op & 0x04) offset |= delta[at++] << 16;
      if (op & 0x08) offset += delta[at++] * 0x1000000; // a shift would turn the top bit into a sign
      if (op & 0x10) size = delta[at++];
      if (op & 0x20) size |= delta[at++] << 8;
      if (op & 0x40) size |= delta[at++] << 16;
      if (at > delta.length) throw corrupt('a copy instruction is cut short');
      if (size === 0) size = 0x10000;
      if (offset + size > base.length || out + size > resultSize) throw corrupt('a copy reaches past its base or result');
      copyBytes(base, offset, result, out, size);
      out += size;
    } else if (op !== 0) {
      if (at + op > delta.length || out + op > resultSize) throw corrupt('an insert reaches past the delta or result');
      copyBytes(delta, at, result, out, op);
      at += op;
      out += op;
    } else {
      throw corrupt('it holds the reserved instruction 0');
    }
  }
  if (out !== resultSize) throw corrupt(`it produced ${out} of ${resultSize} bytes`);
  return result;
}

/** Deltas are mostly short copies and inserts: below this, a loop beats Buffer#copy's setup (a view per call). */
const SHORT_COPY = 64;

function copyBytes(from: Buffer, start: number, to: Buffer, at: number, length: number): void {
  if (length < SHORT_COPY) {
    for (let i = 0; i < length; i++) to[at + i] = from[start + i];
  } else {
    from.copy(to, at, start, start + length);
  }
}

function corrupt(why: string): GitfsError {
  return new GitfsError('transient', `a received pack delta is corrupt: ${why}`);
}
