import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { join } from 'node:path';
import { commitTree, generatedTree, removeDir, tempDir } from '../support/repoFixtures';
import { NodeHarness, run } from '../support/nodeHarness';

const MiB = 1024 * 1024;
let harness: NodeHarness;
let checkout: string;

before(async () => {
  // A 1 MiB budget: its shared table of verified blobs holds about 700, fewer than the tree's 1,500 files.
  harness = await NodeHarness.start({ config: { cacheMaxBytes: MiB } });
  const commit = await commitTree(harness.repoDir('many.git'), generatedTree(1500));
  checkout = await tempDir('small-cache');
  await run('sh', ['-c', `git --git-dir '${harness.repoDir('many.git')}' archive ${commit} src | tar -x -C '${checkout}'`]);
});
after(async () => {
  await harness.stop();
  await removeDir(checkout);
});

test('a cache with more blobs than its serving threads can track, and more bytes than its budget, still serves every byte, read after read', async () => {
  const target = harness.target('many');
  const published = await harness.publisher.publish({ repository: harness.url('many.git'), target });
  await published.preparation.sizes.wait(30_000);
  // Four readers at once, while segments are sealed, removed and their recently read blobs moved.
  const digest = (dir: string) => run('sh', ['-c', 'cd "$1" && find src -type f | sort | xargs -P4 -n40 sha256sum | sort | sha256sum', 'sh', dir]);
  const theirs = await digest(checkout);
  for (let round = 0; round < 3; round++) {
    const ours = await digest(target);
    assert.equal(ours.code, 0, ours.stderr);
    assert.equal(ours.stdout, theirs.stdout, `round ${round}`);
    // Else the kernel's page cache answers the next round without us.
    await run('sh', ['-c', 'echo 1 > /proc/sys/vm/drop_caches']);
  }
  const stats = harness.node.cache.stats();
  assert.ok(stats.evictions > 0, 'the budget was exceeded, and kept');
  assert.ok(stats.bytes <= MiB);
  // Each round is a scan larger than the cache: its blobs are not written a second time.
  assert.ok(stats.keptBytes < stats.bytesTaken / 4, `${stats.keptBytes} bytes kept of ${stats.bytesTaken} taken`);
  await harness.publisher.unpublish(target);
});
