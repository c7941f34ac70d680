import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, writeFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BlobCache } from '../../src/cache/blobCache';
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

async function readAll(cache: BlobCache, oid: string): Promise<string | undefined> {
  const fd = await cache.open(oid);
  if (fd === undefined) return undefined;
  try {
    return readFileSync(fd, 'utf8');
  } finally {
    cache.close(oid, fd);
  }
}

let dir: string;
before(async () => (dir = await tempDir('cache')));
after(() => removeDir(dir));

test('a blob is stored under its id once verified, for SHA-1 and SHA-256 ids', async () => {
  const cache = await BlobCache.open(join(dir, 'a'), 1 << 20);
  const content = Buffer.from('hello, cache\n');
  const sha1 = await put(cache, content);
  const sha256 = await put(cache, content, blobId(content, 'sha256'));
  assert.equal(await readAll(cache, sha1), 'hello, cache\n');
  assert.equal(await readAll(cache, sha256), 'hello, cache\n');
  assert.equal(cache.sizeOf(sha1), content.length);
});

test('content that does not hash to its id is refused and leaves nothing behind', async () => {
  const cache = await BlobCache.open(join(dir, 'b'), 1 << 20);
  const oid = blobId(Buffer.from('the real content'));
  await assert.rejects(put(cache, Buffer.from('something else!'), oid), /failed verification/);
  assert.equal(cache.has(oid), false);
  assert.deepEqual(await readdir(join(dir, 'b', 'blobs', oid.slice(0, 2))), []);
});

test('the budget evicts least recently used blobs, never an open one', async () => {
  const cache = await BlobCache.open(join(dir, 'c'), 2500);
  const a = await put(cache, Buffer.alloc(1000, 'a'));
  const b = await put(cache, Buffer.alloc(1000, 'b'));
  const pinned = await cache.open(a); // a is open
  assert.ok(pinned !== undefined);
  const c = await put(cache, Buffer.alloc(1000, 'c')); // over budget: b is the LRU blob not open
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(cache.has(a), true);
  assert.equal(cache.has(b), false);
  assert.equal(cache.has(c), true);
  assert.equal(cache.stats().evictions, 1);
  cache.close(a, pinned);
});

test('a restart indexes the cache without hashing, and hashes a blob on its first open', async () => {
  const path = join(dir, 'd');
  const first = await BlobCache.open(path, 4 << 20);
  const good = await put(first, Buffer.from('good'));
  const bad = await put(first, Buffer.from('soon corrupted'));
  const old = await put(first, Buffer.from('old'));
  // Past the size that is hashed in one read: streamed instead.
  const large = Buffer.alloc(1536 * 1024, 'large ');
  const badLarge = await put(first, large);
  await utimes(first.pathOf(old), new Date(0), new Date(0));
  await writeFile(first.pathOf(bad), 'SOON CORRUPTED'); // same size, different bytes
  await writeFile(first.pathOf(badLarge), Buffer.from(large).fill('L', 1024 * 1024, 1024 * 1024 + 1));

  const second = await BlobCache.open(path, 4 << 20);
  assert.equal(second.stats().blobs, 4);
  assert.equal(second.stats().corruptDiscarded, 0, 'nothing is hashed at start-up');
  assert.equal(await readAll(second, good), 'good');
  assert.equal(await readAll(second, bad), undefined);
  assert.equal(second.has(bad), false);
  assert.equal(await readAll(second, badLarge), undefined);
  assert.equal(second.has(badLarge), false);
  assert.equal(second.stats().corruptDiscarded, 2);

  // The oldest file (by mtime) is the first to go when the budget shrinks.
  const third = await BlobCache.open(path, 5);
  assert.equal(third.has(old), false);
  assert.equal(third.has(good), true);
});
