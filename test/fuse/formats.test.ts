import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { commitTree, generatedTree, git } from '../support/repoFixtures';
import { NodeHarness } from '../support/nodeHarness';

describe('repository formats and servers', () => {
  let harness: NodeHarness;
  before(async () => (harness = await NodeHarness.start()));
  after(() => harness.stop());

  // Depth 1 takes our own protocol-v2 client, the whole history git's.
  for (const [client, depth] of [['our own client', 1], ['git', undefined]] as const) {
    test(`a SHA-256 repository mounts and its blobs verify (${client})`, async () => {
      const name = `sha256-${depth ?? 'all'}.git`;
      const commit = await commitTree(harness.repoDir(name), generatedTree(30).filter((e) => !('gitlink' in e)), { objectFormat: 'sha256' });
      assert.equal(commit.length, 64);
      const target = harness.target(name);
      const published = await harness.publisher.publish({ repository: harness.url(name), depth, target });
      await published.preparation.sizes.wait(20_000);
      assert.match(harness.logs, new RegExp(`"fetched":true,"client":"${depth ? 'gitfs-csi' : 'git'}"`));
      assert.equal(await readFile(join(target, 'README.md'), 'utf8'), '# generated fixture\n');
      assert.equal((await stat(join(target, 'assets/large.bin'))).size, 3 * 1024 * 1024 + 17);
      assert.equal((await stat(join(target, 'README.md'))).mtimeMs, 1_700_000_000_000, 'entries carry the commit time');
      await harness.publisher.unpublish(target);
    });
  }

  test('without object-info, sizes come from one batched fetch, not one per file', async () => {
    await commitTree(harness.repoDir('plain.git'), generatedTree(200));
    harness.server.options.hideObjectInfo = true;
    harness.server.resetCounters();
    const target = harness.target('plain');
    const published = await harness.publisher.publish({ repository: harness.url('plain.git'), target });
    await published.preparation.sizes.wait(20_000);
    assert.equal(harness.server.counters.objectInfo, 0);
    assert.equal(harness.server.counters.fetches, 2); // the commit's trees, then every blob at once
    assert.equal((await stat(join(target, 'package.json'))).size, '{"name":"fixture"}\n'.length);
    harness.server.options.hideObjectInfo = false;
    await harness.publisher.unpublish(target);
  });

  test('a 1 GiB file streams through the cache without being held in memory', async () => {
    const size = 1024 ** 3;
    await commitTree(harness.repoDir('large.git'), [{ path: 'huge.bin', size, byte: 0x5a }, { path: 'small.txt', content: 'small\n' }]);
    const oid = (await git(['--git-dir', harness.repoDir('large.git'), 'rev-parse', 'HEAD:huge.bin'])).trim();
    const target = harness.target('large');
    const published = await harness.publisher.publish({ repository: harness.url('large.git'), target });
    await published.preparation.sizes.wait(60_000);
    assert.equal((await stat(join(target, 'huge.bin'))).size, size);
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    const hash = createHash('sha1').update(`blob ${size}\0`);
    let bytes = 0;
    try {
      for await (const chunk of createReadStream(join(target, 'huge.bin'), { highWaterMark: 1 << 20 })) {
        hash.update(chunk as Buffer);
        bytes += (chunk as Buffer).length;
      }
    } finally {
      clearInterval(sampler);
    }
    assert.equal(bytes, size);
    assert.equal(hash.digest('hex'), oid);
    assert.ok(peak - rssBefore < 256 * 1024 * 1024, `RSS grew by ${((peak - rssBefore) / 2 ** 20).toFixed(0)} MiB`);
    await harness.publisher.unpublish(target);
  });
});
