import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyDelta } from '../../src/git/packDelta';

/** A delta's size header: little-endian base-128. */
function varint(value: number): number[] {
  const bytes: number[] = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    bytes.push(byte);
  } while (value > 0);
  return bytes;
}

/** A copy instruction with only the offset and size bytes that are not zero, as git writes it. */
function copy(offset: number, size: number): number[] {
  let op = 0x80;
  const args: number[] = [];
  for (let i = 0; i < 4; i++) {
    const byte = Math.floor(offset / 256 ** i) % 256;
    if (byte !== 0) (op |= 1 << i), args.push(byte);
  }
  for (let i = 0; i < 3; i++) {
    const byte = Math.floor((size === 0x10000 ? 0 : size) / 256 ** i) % 256;
    if (byte !== 0) (op |= 0x10 << i), args.push(byte);
  }
  return [op, ...args];
}

test('a delta copies from every byte range of its base and inserts literals', () => {
  // 17 MiB, so that a copy needs all four offset bytes.
  const base = Buffer.alloc(17 * 1024 * 1024);
  for (let i = 0; i < base.length; i++) base[i] = (i * 7 + (i >> 11)) & 0xff;
  const pieces: Buffer[] = [];
  const ops: number[] = [];
  const addCopy = (offset: number, size: number) => {
    ops.push(...copy(offset, size));
    pieces.push(base.subarray(offset, offset + size));
  };
  const addInsert = (text: string) => {
    const bytes = Buffer.from(text);
    ops.push(bytes.length, ...bytes);
    pieces.push(bytes);
  };
  addCopy(0x1000010, 100); // the top offset byte
  addInsert('hello');
  addCopy(5, 0x10000); // size 0 means 64 KiB
  addCopy(0x0203, 0x012345); // all three size bytes
  addCopy(0, 1);
  addInsert('x'.repeat(127));
  addCopy(0x10ffff0, 16); // the last bytes of the base
  const expected = Buffer.concat(pieces);
  const delta = Buffer.from([...varint(base.length), ...varint(expected.length), ...ops]);
  assert.ok(applyDelta(base, delta).equals(expected));
});

test('a delta that does not fit its base or its result is refused', () => {
  const base = Buffer.from('0123456789');
  const header = (result: number) => [...varint(base.length), ...varint(result)];
  assert.throws(() => applyDelta(base, Buffer.from([...header(4), ...copy(8, 4)])), /reaches past its base/);
  assert.throws(() => applyDelta(base, Buffer.from([...header(2), 3, 0x61, 0x62, 0x63])), /reaches past the delta or result/);
  assert.throws(() => applyDelta(base, Buffer.from([...header(4), ...copy(0, 3)])), /produced 3 of 4 bytes/);
  assert.throws(() => applyDelta(base, Buffer.from([...varint(9), ...varint(1), ...copy(0, 1)])), /its base has 10 bytes/);
  assert.throws(() => applyDelta(base, Buffer.from([...header(1), 0])), /reserved instruction 0/);
  assert.throws(() => applyDelta(base, Buffer.from([...header(1), 0x80 | 0x01 | 0x10, 2])), /cut short/);
});
