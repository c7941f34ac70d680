import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BlobCache } from '../../src/cache/blobCache';
import { GitfsError } from '../../src/errors/errors';
import { UnpackThread } from '../../src/prepare/unpackThread';
import { commitSimilarPair, packOfAll, removeDir, storedObjects, tempDir } from '../support/repoFixtures';

describe('the unpacking thread', () => {
  let dir: string;
  let repo: string;
  let pack: Buffer;
  /** Every blob of the fixture: id → size. */
  let blobs: Map<string, number>;

  before(async () => {
    dir = await tempDir('unpack-thread');
    repo = join(dir, 'repo.git');
    // Two similar commits, so the pack holds blob deltas, some based on blobs written earlier.
    await commitSimilarPair(repo, 400, 11);
    blobs = new Map((await storedObjects(repo)).filter((o) => o.type === 'blob').map((o) => [o.oid, o.size]));
    pack = await packOfAll(repo);
  });
  after(() => removeDir(dir));

  const feed = async (sink: { push(c: Buffer): Promise<void> }, bytes: Buffer, chunk: number) => {
    for (let at = 0; at < bytes.length; at += chunk) await sink.push(bytes.subarray(at, at + chunk));
  };

  test('writes every blob of a pack into the cache, each under the id of its content, and says so', async () => {
    const cacheDir = join(dir, 'cache-all');
    const cache = await BlobCache.open(cacheDir, 1 << 30);
    const thread = new UnpackThread(cache, 64 * 1024); // a small base budget: bases are read back from disk
    const stored = new Map<string, number>();
    try {
      const sink = thread.sink('sha1', (oid, size) => stored.set(oid, size));
      await feed(sink, pack, 5000);
      await sink.end();
    } finally {
      await thread.close();
    }
    assert.deepEqual([...stored].sort(), [...blobs].sort());
    for (const [oid, size] of [...stored].filter((_, i) => i % 7 === 0)) {
      const content = await cache.readWhole(oid);
      assert.equal(content.length, size);
      assert.equal(createHash('sha1').update(`blob ${size}\0`).update(content).digest('hex'), oid);
    }
    assert.equal(cache.stats().blobs, blobs.size);
    const reopened = await BlobCache.open(cacheDir, 1 << 30);
    assert.equal(reopened.stats().blobs, blobs.size, 'every blob is a whole record, found again after a restart');
  });

  test('a corrupt pack fails its job as transient (fetched again), and the thread goes on serving the next', async () => {
    const cacheDir = join(dir, 'cache-corrupt');
    const thread = new UnpackThread(await BlobCache.open(cacheDir, 1 << 30));
    try {
      const damaged = Buffer.from(pack);
      damaged[damaged.length - 5] ^= 0xff; // the trailing checksum
      const broken = thread.sink('sha1', () => undefined);
      await feed(broken, damaged, 64 * 1024);
      await assert.rejects(broken.end(), (err: unknown) => err instanceof GitfsError && err.kind === 'transient' && /corrupt/.test(err.message));
      let count = 0;
      const next = thread.sink('sha1', () => count++);
      await feed(next, pack, 64 * 1024);
      await next.end();
      assert.equal(count, blobs.size);
    } finally {
      await thread.close();
    }
  });

  test('closing the thread fails the job in progress instead of leaving it waiting', async () => {
    const cacheDir = join(dir, 'cache-closed');
    const thread = new UnpackThread(await BlobCache.open(cacheDir, 1 << 30));
    const sink = thread.sink('sha1', () => undefined);
    await sink.push(pack.subarray(0, pack.length >> 1));
    await thread.close();
    await assert.rejects(sink.end(), /shut down/);
    await assert.rejects(sink.push(pack.subarray(pack.length >> 1)), /shut down/);
    assert.throws(() => thread.sink('sha1', () => undefined), /shut down/);
  });
});
