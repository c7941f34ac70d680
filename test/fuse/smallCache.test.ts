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

test('a cache with more blobs than its serving threads can track, and more bytes than its budget, still serves every byte', async () => {
  const target = harness.target('many');
  const published = await harness.publisher.publish({ repository: harness.url('many.git'), target });
  await published.preparation.sizes.wait(30_000);
  const digest = (dir: string) => run('sh', ['-c', 'cd "$1" && find src -type f | sort | xargs cat | sha256sum', 'sh', dir]);
  const [ours, theirs] = [await digest(target), await digest(checkout)];
  assert.equal(ours.code, 0, ours.stderr);
  assert.equal(ours.stdout, theirs.stdout);
  const stats = harness.node.cache.stats();
  assert.ok(stats.evictions > 0, 'the budget was exceeded, and kept');
  assert.ok(stats.bytes <= MiB);
  await harness.publisher.unpublish(target);
});
