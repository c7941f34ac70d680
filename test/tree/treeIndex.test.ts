import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { EntryKind } from '../../src/tree/treeIndex';
import { buildTreeIndex } from '../../src/tree/treeIndexBuilder';

function listing(records: string[]): Readable {
  // Split records across chunk boundaries to exercise the streaming parser.
  const bytes = Buffer.from(records.map((r) => `${r}\0`).join(''));
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 7) chunks.push(bytes.subarray(i, i + 7));
  return Readable.from(chunks);
}

const oid = (n: number) => n.toString(16).padStart(40, '0');

test('the index resolves paths, kinds and sorted children from ls-tree output', async () => {
  const index = await buildTreeIndex(
    listing([
      `100644 blob ${oid(1)}\tREADME.md`,
      `040000 tree ${oid(2)}\tb`,
      `100755 blob ${oid(3)}\tb/run`,
      `040000 tree ${oid(4)}\tb/c`,
      `120000 blob ${oid(5)}\tb/c/link`,
      `100644 blob ${oid(6)}\tb/a filé`,
      `160000 commit ${oid(7)}\tsub`,
      `100644 blob ${oid(8)}\ta.txt`,
    ]),
    oid(99),
  );
  assert.equal(index.count, 9);
  assert.equal(index.kind(index.lookup('/b/run')), EntryKind.Executable);
  assert.equal(index.kind(index.lookup('b/c/link')), EntryKind.Symlink);
  assert.equal(index.kind(index.lookup('/sub')), EntryKind.Gitlink);
  assert.equal(index.oid(index.lookup('/b/a filé')), oid(6));
  assert.equal(index.lookup('/b/missing'), -1);
  assert.equal(index.lookup('/README.md/x'), -1);
  assert.deepEqual([...index.childrenOf(index.lookup('/b'))].map((e) => index.name(e)), ['a filé', 'c', 'run']);
  assert.deepEqual([...index.childrenOf(0)].map((e) => index.name(e)), ['README.md', 'a.txt', 'b', 'sub']);
  assert.equal(index.pathOf(index.lookup('/b/c/link')), 'b/c/link');
  assert.equal(index.allSizesKnown, false);
  assert.equal(index.applySizes(new Map([[oid(1), 10], [oid(3), 20], [oid(5), 4], [oid(6), 0], [oid(8), 1]])), 0);
  assert.equal(index.totalBytes, 35);
  assert.equal(index.allSizesKnown, true);
});

test("git's order (a directory sorts as if its name ended in '/') becomes name order, so lookups find every entry", async () => {
  const index = await buildTreeIndex(
    listing([`100644 blob ${oid(1)}\tlib.c`, `040000 tree ${oid(2)}\tlib`, `100644 blob ${oid(3)}\tlib/x`, `100644 blob ${oid(4)}\tlib0`]),
    oid(99),
  );
  assert.deepEqual([...index.childrenOf(0)].map((e) => index.name(e)), ['lib', 'lib.c', 'lib0']);
  for (const path of ['lib', 'lib.c', 'lib/x', 'lib0']) assert.equal(index.pathOf(index.lookup(path)), path);
});

test('a 100k-entry tree stays under 200 bytes per entry', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const records: string[] = [];
  for (let d = 0; d < 1000; d++) {
    records.push(`040000 tree ${oid(d + 1e6)}\tpackages/module-${d}`);
    for (let f = 0; f < 99; f++) records.push(`100644 blob ${oid(d * 100 + f)}\tpackages/module-${d}/source-file-${f}.ts`);
  }
  records.unshift(`040000 tree ${oid(5e6)}\tpackages`);
  const stream = listing(records);
  gc();
  const before = process.memoryUsage();
  const index = await buildTreeIndex(stream, oid(1));
  gc();
  const afterUse = process.memoryUsage();
  const bytes = afterUse.heapUsed - before.heapUsed + (afterUse.arrayBuffers - before.arrayBuffers);
  assert.equal(index.count, 100_002);
  const perEntry = bytes / index.count;
  assert.ok(perEntry <= 200, `${perEntry.toFixed(0)} bytes per entry`);
  assert.equal(index.lookup('/packages/module-999/source-file-98.ts') > 0, true);
});
