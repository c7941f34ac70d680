import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { BlobCache } from '../../src/cache/blobCache';
import { HEADER_BYTES, scanSegment, segmentName, segmentOfName, segmentsDirOf } from '../../src/cache/segmentLayout';
import { removeDir, tempDir } from '../support/repoFixtures';

const blobId = (content: Buffer, algorithm: 'sha1' | 'sha256' = 'sha1') =>
  createHash(algorithm).update(`blob ${content.length}\0`).update(content).digest('hex');

async function put(cache: BlobCache, content: Buffer, oid = blobId(content)): Promise<string> {
  const writer = cache.writer(oid);
  writer.start(content.length);
  for (let i = 0; i < content.length; i += 1000) await writer.data(content.subarray(i, i + 1000));
  await writer.finish();
  return oid;
}

function readAll(cache: BlobCache, oid: string): Promise<string | undefined> {
  return cache.use(oid, (read, size) => {
    const content = Buffer.alloc(size);
    read(0, size, content, 0);
    return content.toString('utf8');
  });
}

/** Overwrites a file's bytes at `position`, as a failing disk would. */
function overwrite(path: string, position: number, bytes: string): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, bytes, position);
  closeSync(fd);
}

/** Overwrites a cached copy's bytes from `at` within it. */
function damage(cache: BlobCache, oid: string, at: number, bytes: string): void {
  const { path, offset } = cache.locationOf(oid)!;
  overwrite(path, offset + at, bytes);
}

/** The names of a cache's segment files, in order. */
async function segmentFiles(cacheDir: string): Promise<string[]> {
  return (await readdir(segmentsDirOf(cacheDir))).filter((name) => segmentOfName(name) !== undefined).sort();
}

/** Every record's id in a cache's segment files, placeholders as undefined. */
async function recordedIds(cacheDir: string): Promise<Array<string | undefined>> {
  const dir = segmentsDirOf(cacheDir);
  const ids: Array<string | undefined> = [];
  for (const name of await segmentFiles(cacheDir)) ids.push(...scanSegment(join(dir, name), (await stat(join(dir, name))).size).map((r) => r.oid));
  return ids;
}

let dir: string;
before(async () => (dir = await tempDir('cache')));
after(() => removeDir(dir));

test('a blob is stored under its id once verified, for SHA-1 and SHA-256 ids, small or streamed', async () => {
  const cache = await BlobCache.open(join(dir, 'a'), 64 << 20);
  const content = Buffer.from('hello, cache\n');
  const sha1 = await put(cache, content);
  const sha256 = await put(cache, content, blobId(content, 'sha256'));
  const large = Buffer.alloc(3 << 20, 'streamed ');
  const streamed = await put(cache, large);
  assert.equal(await readAll(cache, sha1), 'hello, cache\n');
  assert.equal(await readAll(cache, sha256), 'hello, cache\n');
  assert.equal(await readAll(cache, streamed), large.toString('utf8'));
  assert.equal(cache.sizeOf(sha1), content.length);
  assert.deepEqual(await recordedIds(join(dir, 'a')), [sha1, sha256, streamed]);
});

test('content that does not hash to its id is refused and leaves no blob behind, small or streamed', async () => {
  const cache = await BlobCache.open(join(dir, 'b'), 64 << 20);
  const oid = blobId(Buffer.from('the real content'));
  await assert.rejects(put(cache, Buffer.from('something else!'), oid), /failed verification/);
  const largeOid = blobId(Buffer.alloc(2 << 20, 'x'));
  await assert.rejects(put(cache, Buffer.alloc(2 << 20, 'y'), largeOid), /failed verification/);
  assert.equal(cache.has(oid), false);
  assert.equal(cache.has(largeOid), false);
  // The streamed one kept its room as a placeholder; no record carries either id.
  assert.deepEqual(await recordedIds(join(dir, 'b')), [undefined]);
});

test('the budget removes the oldest segments, appending again first the blobs read since', async () => {
  // A sixteenth of 2,500 bytes per segment: a segment per blob.
  const cache = await BlobCache.open(join(dir, 'c'), 2500);
  const a = await put(cache, Buffer.alloc(1000, 'a'));
  const b = await put(cache, Buffer.alloc(1000, 'b'));
  assert.equal((await readAll(cache, a))?.length, 1000); // a is read: it outlives its segment
  const c = await put(cache, Buffer.alloc(1000, 'c')); // over budget: a's segment, then b's, go
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(cache.has(a), true);
  assert.equal(cache.has(b), false);
  assert.equal(cache.has(c), true);
  assert.equal(await readAll(cache, a), 'a'.repeat(1000));
  assert.equal(cache.stats().evictions, 1);
  assert.equal(cache.stats().keptBytes, 1000, 'a was written again');
  assert.ok(cache.stats().bytes <= 2500);
  assert.equal((await segmentFiles(join(dir, 'c'))).length, 2, 'the removed segments files are gone');
  assert.deepEqual((await readdir(segmentsDirOf(join(dir, 'c')))).filter((name) => name.endsWith('.idx')).length, 1, 'with their indexes (the current segment has none yet)');
});

test('a blob read only while its segment was still being written gets no second chance: a scan is not written twice', async () => {
  const cache = await BlobCache.open(join(dir, 'j'), 2500);
  const a = await put(cache, Buffer.alloc(1000, 'a'));
  assert.equal((await readAll(cache, a))?.length, 1000); // read as it arrived, its segment still open
  const b = await put(cache, Buffer.alloc(1000, 'b')); // seals a's segment
  const c = await put(cache, Buffer.alloc(1000, 'c')); // over budget: a's segment goes, a with it
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(cache.has(a), false);
  assert.equal(cache.has(b), true);
  assert.equal(cache.has(c), true);
  assert.equal(cache.stats().keptBytes, 0);
});

test('a segment still being written to is never removed, however far the budget is exceeded meanwhile', async () => {
  const cache = await BlobCache.open(join(dir, 'i'), 4 << 20);
  const large = Buffer.alloc(1536 * 1024, 'streamed while others come and go ');
  const oid = blobId(large);
  const writer = cache.writer(oid);
  writer.start(large.length);
  await writer.data(large.subarray(0, 768 * 1024));
  // Its segment is sealed by the next blob and then is the oldest; 6 MB more go past the budget.
  for (let i = 0; i < 60; i++) await put(cache, Buffer.alloc(100 * 1000, `small ${i} `));
  assert.ok(cache.stats().evictions > 0);
  await writer.data(large.subarray(768 * 1024));
  await writer.finish();
  assert.equal(await readAll(cache, oid), large.toString('utf8'));
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(cache.stats().bytes <= 4 << 20);
});

test('a restart indexes the cache without hashing, hashes a blob on its first use, and removes the oldest segment first', async () => {
  const path = join(dir, 'd');
  const earliest = await BlobCache.open(path, 64 << 20);
  const old = await put(earliest, Buffer.from('old'));
  const oldBytes = earliest.stats().bytes;
  const first = await BlobCache.open(path, 64 << 20); // a new process: segments of its own
  const good = await put(first, Buffer.from('good'));
  const bad = await put(first, Buffer.from('soon corrupted'));
  // Past the size that is hashed in one read: streamed instead.
  const large = Buffer.alloc(1536 * 1024, 'large ');
  const badLarge = await put(first, large);
  damage(first, bad, 0, 'SOON CORRUPTED'); // same size, different bytes
  damage(first, badLarge, 1024 * 1024, 'L');

  const second = await BlobCache.open(path, 64 << 20);
  assert.equal(second.stats().blobs, 4);
  assert.equal(second.stats().corruptDiscarded, 0, 'nothing is hashed at start-up');
  assert.equal(await readAll(second, good), 'good');
  assert.equal(await readAll(second, bad), undefined);
  assert.equal(second.has(bad), false);
  assert.equal(await readAll(second, badLarge), undefined);
  assert.equal(second.has(badLarge), false);
  assert.equal(second.stats().corruptDiscarded, 2);

  // The oldest segment is the first to go when the budget shrinks.
  const third = await BlobCache.open(path, second.stats().bytes - oldBytes);
  assert.equal(third.has(old), false);
  assert.equal(third.has(good), true);
  assert.equal(await readAll(third, good), 'good');
});

test('a segment cut short by a crash keeps the records before the cut, and the next writer starts a segment of its own', async () => {
  const path = join(dir, 'e');
  const first = await BlobCache.open(path, 64 << 20);
  const kept = await put(first, Buffer.from('kept'));
  const cut = await put(first, Buffer.from('cut short'));
  const { path: segment, offset } = first.locationOf(cut)!;
  await truncate(segment, offset + 3);

  const second = await BlobCache.open(path, 64 << 20);
  assert.equal(await readAll(second, kept), 'kept');
  assert.equal(second.has(cut), false);
  // A predecessor still running made the next segment after this process looked: it is left alone.
  const predecessors = join(segmentsDirOf(path), segmentName(segmentOfName(basename(segment))! + 1));
  await writeFile(predecessors, 'theirs');
  assert.ok(existsSync(`${segment}.idx`), 'the scanned segment is indexed for the next start');
  const again = await put(second, Buffer.from('cut short'));
  assert.equal(await readAll(second, again), 'cut short');
  assert.notEqual(second.locationOf(again)!.path, segment);
  assert.notEqual(second.locationOf(again)!.path, predecessors);
  assert.equal(await readFile(predecessors, 'utf8'), 'theirs');
});

test('a graceful stop seals its segment with an index, which a restart reads instead of the segment', async () => {
  const path = join(dir, 'g');
  const first = await BlobCache.open(path, 64 << 20);
  const oid = await put(first, Buffer.from('indexed'));
  first.close();
  const { path: segment, offset } = first.locationOf(oid)!;
  assert.ok(existsSync(`${segment}.idx`));
  overwrite(segment, offset - HEADER_BYTES, 'XXXX'); // a scan would stop at this header
  const second = await BlobCache.open(path, 64 << 20);
  assert.equal(await readAll(second, oid), 'indexed');
});

test('the file-per-blob cache of an earlier version is removed, not read', async () => {
  const path = join(dir, 'f');
  await mkdir(join(path, 'blobs', 'ab'), { recursive: true });
  await writeFile(join(path, 'blobs', 'ab', 'c'.repeat(38)), 'an old blob');
  const cache = await BlobCache.open(path, 64 << 20);
  assert.equal(cache.stats().blobs, 0);
  for (let waited = 0; existsSync(join(path, 'blobs')) && waited < 5000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(existsSync(join(path, 'blobs')), false);
});
