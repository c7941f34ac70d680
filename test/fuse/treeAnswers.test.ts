import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SegmentReader } from '../../src/cache/segmentReader';
import { ServableBlobs } from '../../src/cache/servableBlobs';
import { Errno } from '../../src/fuse/errno';
import { has, LINUX_5_10, negotiate } from '../../src/fuse/initNegotiation';
import { IN_HEADER, Init, Op, OUT_HEADER } from '../../src/fuse/protocol';
import { answer, ConnectionFacts, Need, NO_REPLY, REQUEST_COUNT_SLOTS, ServedTree } from '../../src/fuse/treeAnswers';
import { TreeColumns } from '../../src/tree/treeColumns';
import { EntryKind } from '../../src/tree/treeIndex';

const oid = (n: number) => Buffer.from(n.toString(16).padStart(40, '0'), 'hex');

function servedTree(): ServedTree {
  const columns = new TreeColumns();
  const name = (s: string) => Buffer.from(s);
  const dir = columns.add(0, name('dir'), 0, 3, EntryKind.Directory);
  columns.setRawOid(dir, oid(1), 0, 20);
  const file = columns.add(dir, name('file.txt'), 0, 8, EntryKind.File);
  columns.setRawOid(file, oid(2), 0, 20);
  const index = columns.finish('ab'.repeat(20));
  index.applySizes(new Map([[oid(2).toString('hex'), 5]]));
  return { index, lookups: new Int32Array(new SharedArrayBuffer(index.count * 4)), commitSeconds: 1_700_000_000 };
}

const facts: ConnectionFacts = {
  negotiated: { minor: 45, flags: 0, offered: Init.NO_OPEN_SUPPORT, maxReadahead: 131072, maxPages: 256 },
  uid: 0,
  gid: 0,
  requests: new Int32Array(REQUEST_COUNT_SLOTS),
  gitDir: false,
};

function request(op: number, nodeid: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const req = Buffer.alloc(IN_HEADER + body.length);
  req.writeUInt32LE(req.length, 0);
  req.writeUInt32LE(op, 4);
  req.writeUInt32LE(77, 8); // unique
  req.writeUInt32LE(0x80000000, 12); // bit 63: a resent request keeps its id
  req.writeUInt32LE(nodeid, 16);
  body.copy(req, IN_HEADER);
  return req;
}

const out = Buffer.alloc(1 << 20);
const errnoOf = (length: number) => (assert.equal(length, OUT_HEADER), -out.readInt32LE(4));

test('a truncated request, or one whose length disagrees with its header, is malformed; an unknown opcode is named as such', () => {
  const tree = servedTree();
  const blobs = new SegmentReader(ServableBlobs.allocate('/nonexistent', 16));
  const short = request(Op.GETATTR, 1).subarray(0, 20);
  assert.equal(answer(short, short.length, facts, tree, blobs, out), Need.Malformed);
  const lying = request(Op.GETATTR, 1);
  lying.writeUInt32LE(999, 0);
  assert.equal(answer(lying, lying.length, facts, tree, blobs, out), Need.Malformed);
  const unterminated = request(Op.LOOKUP, 1, Buffer.from('dir'));
  assert.equal(answer(unterminated, unterminated.length, facts, tree, blobs, out), Need.Malformed);
  const unknown = request(4242, 1);
  assert.equal(answer(unknown, unknown.length, facts, tree, blobs, out), Need.Unknown);
});

test('lookups answer entries and cache misses; writes are EROFS; replies carry the request id as received', () => {
  const tree = servedTree();
  const blobs = new SegmentReader(ServableBlobs.allocate('/nonexistent', 16));
  const lookup = (parent: number, name: string) => {
    const req = request(Op.LOOKUP, parent, Buffer.from(`${name}\0`));
    return answer(req, req.length, facts, tree, blobs, out);
  };
  assert.ok(lookup(1, 'dir') > OUT_HEADER);
  assert.equal(out.readUInt32LE(8), 77);
  assert.equal(out.readUInt32LE(12), 0x80000000);
  assert.equal(out.readUInt32LE(OUT_HEADER), tree.index.lookup('dir') + 1, 'the node id is the entry number + 1');
  assert.ok(lookup(1, 'missing') > OUT_HEADER);
  assert.equal(out.readUInt32LE(OUT_HEADER), 0, 'a miss is an entry with node id 0, which the kernel caches');
  assert.equal(errnoOf(lookup(tree.index.lookup('dir/file.txt') + 1, 'x')), Errno.ENOTDIR);
  assert.equal(tree.lookups[tree.index.lookup('dir')], 1);
  const write = request(Op.MKDIR, 1, Buffer.alloc(16));
  assert.equal(errnoOf(answer(write, write.length, facts, tree, blobs, out)), Errno.EROFS);
  const open = request(Op.OPEN, 3, Buffer.alloc(8));
  assert.equal(errnoOf(answer(open, open.length, facts, tree, blobs, out)), Errno.ENOSYS, 'zero-message opens where the kernel offers them');
  const flush = request(Op.FLUSH, 3, Buffer.alloc(24));
  assert.equal(errnoOf(answer(flush, flush.length, facts, tree, blobs, out)), Errno.ENOSYS, 'the kernel sends no FLUSH after this');
  const forget = request(Op.FORGET, tree.index.lookup('dir') + 1, Buffer.from([5, 0, 0, 0, 0, 0, 0, 0]));
  assert.equal(answer(forget, forget.length, facts, tree, blobs, out), NO_REPLY);
  assert.equal(tree.lookups[tree.index.lookup('dir')], 0, 'never below zero');
});

test('before the tree is ready only the root answers; a blob not verified in the cache goes to the main thread', () => {
  const blobs = new SegmentReader(ServableBlobs.allocate('/nonexistent', 16));
  const root = request(Op.GETATTR, 1, Buffer.alloc(16));
  assert.ok(answer(root, root.length, facts, undefined, blobs, out) > OUT_HEADER);
  assert.equal(out.readUInt32LE(OUT_HEADER), 0, 'attr_valid 0: the real root shows once ready');
  const lookup = request(Op.LOOKUP, 1, Buffer.from('dir\0'));
  assert.equal(answer(lookup, lookup.length, facts, undefined, blobs, out), Need.Tree);
  const tree = servedTree();
  const read = request(Op.READ, tree.index.lookup('dir/file.txt') + 1, Buffer.alloc(40));
  read.writeUInt32LE(4096, IN_HEADER + 16);
  assert.equal(answer(read, read.length, facts, tree, blobs, out), Need.Blob);
});

function initRequest(minor: number, flags: number, flags2: number): Buffer {
  const body = Buffer.alloc(64);
  body.writeUInt32LE(7, 0);
  body.writeUInt32LE(minor, 4);
  body.writeUInt32LE(131072, 8);
  body.writeUInt32LE(flags >>> 0, 12);
  body.writeUInt32LE(flags2, 16);
  return request(Op.INIT, 0, body);
}

test('INIT takes only what the kernel offers, and a profile masks it down to an older kernel', () => {
  const offered = (Init.ASYNC_READ + Init.DO_READDIRPLUS + Init.MAX_PAGES + Init.NO_OPEN_SUPPORT + Init.INIT_EXT) >>> 0;
  const withResend = negotiate(initRequest(45, offered, (Init.HAS_RESEND + Init.PASSTHROUGH) / 2 ** 32), IN_HEADER);
  assert.equal(withResend.minor, 45);
  assert.ok(has(withResend.offered, Init.HAS_RESEND) && has(withResend.flags, Init.DO_READDIRPLUS));
  assert.ok(!has(withResend.flags, Init.CACHE_SYMLINKS), 'not offered, not used');
  const old = negotiate(initRequest(45, offered, (Init.HAS_RESEND + Init.PASSTHROUGH) / 2 ** 32), IN_HEADER, LINUX_5_10);
  assert.equal(old.minor, 32);
  assert.ok(!has(old.offered, Init.HAS_RESEND) && !has(old.offered, Init.PASSTHROUGH) && has(old.offered, Init.NO_OPEN_SUPPORT));
  assert.throws(() => negotiate(initRequest(26, offered, 0), IN_HEADER), /7\.26.*needs 7\.31/);
});
