import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RemoteUrl } from '../../src/git/remoteUrl';
import { NodeHarness, run } from '../support/nodeHarness';
import { commitTree, generatedTree, git } from '../support/repoFixtures';

describe('a commit fetched with our own protocol-v2 client', () => {
  let harness: NodeHarness;
  let commit: string;

  before(async () => {
    harness = await NodeHarness.start();
    await commitTree(harness.repoDir('repo.git'), generatedTree(200, 2));
    commit = await commitTree(harness.repoDir('repo.git'), generatedTree(300, 4), { message: 'second' });
    await commitTree(harness.repoDir('nofilter.git'), generatedTree(40));
    await git(['--git-dir', harness.repoDir('nofilter.git'), 'config', 'uploadpack.allowFilter', 'false']);
  });
  after(() => harness.stop());

  const storeOf = (name: string) => harness.node.stores.forRemote(RemoteUrl.parse(harness.url(name))).gitDir;

  test('is indexed from the transfer, and leaves the store as git fetch would', async () => {
    harness.server.resetCounters();
    const target = harness.target('received');
    const published = await harness.publisher.publish({ repository: harness.url('repo.git'), depth: 1, target });
    await published.preparation.sizes.wait(30_000);
    assert.match(harness.logs, /"fetched":true,"client":"gitfs-csi"/);
    assert.equal(harness.server.counters.fetches, 1, 'one fetch of trees (sizes came from object-info)');
    assert.deepEqual((await readdir(target)).filter((name) => name !== '.git').sort(), (await git(['--git-dir', harness.repoDir('repo.git'), 'ls-tree', '--name-only', commit])).trim().split('\n').sort());

    const store = storeOf('repo.git');
    assert.equal((await git(['--git-dir', store, 'rev-parse', `refs/gitfs/commits/${commit}`])).trim(), commit);
    assert.equal((await readFile(join(store, 'shallow'), 'utf8')).trim(), commit, 'history is cut at the commit, as the server said');
    assert.ok((await readdir(join(store, 'objects/pack'))).some((f) => f.endsWith('.promisor')), 'the pack is a promisor pack');
    // Every tree is there and only blobs are missing: exactly what a blobless fetch leaves.
    const missing = await git(['--git-dir', store, 'rev-list', '--objects', '--missing=print', commit]);
    const missingIds = missing.split('\n').filter((l) => l.startsWith('?')).map((l) => l.slice(1));
    const blobs = (await git(['--git-dir', harness.repoDir('repo.git'), 'ls-tree', '-r', commit])).split('\n').filter((l) => l.includes(' blob ')).map((l) => l.split(/\s+/)[2]);
    assert.deepEqual(new Set(missingIds), new Set(blobs));

    // Reading a file fetches its blob by id, with the same client, straight into the cache: no pack is added to the store.
    harness.server.resetCounters();
    assert.equal(await readFile(join(target, 'README.md'), 'utf8'), '# generated fixture\n');
    assert.ok(harness.server.counters.fetches >= 1 && harness.server.counters.infoRefs === 0, 'fetched by id, with no second advertisement');
    assert.deepEqual((await readdir(join(store, 'objects/pack'))).filter((f) => f.endsWith('.pack')).length, 1);
    assert.equal(harness.node.cache.stats().blobs > 0, true);
    await harness.publisher.unpublish(target);
  });

  test('after a restart, the stored commit is served again from the store: ls-tree, no network', async () => {
    await harness.restart();
    harness.server.resetCounters();
    const target = harness.target('after-restart');
    const published = await harness.publisher.publish({ repository: harness.url('repo.git'), depth: 1, target });
    await published.preparation.gate.wait(30_000);
    assert.equal(published.resolved.commit, commit);
    assert.match(harness.logs, /"fetched":false,"client":"git"/);
    assert.equal(harness.server.counters.fetches, 0);
    const listing = await run('sh', ['-c', `cd '${target}' && find . | sort`]);
    assert.ok(listing.stdout.split('\n').length > 300);
    await harness.publisher.unpublish(target);
  });

  test('a server without partial-clone filters is left to git, and the volume still works', async () => {
    const target = harness.target('no-filter');
    const published = await harness.publisher.publish({ repository: harness.url('nofilter.git'), depth: 1, target });
    await published.preparation.gate.wait(30_000);
    assert.match(harness.logs, /does not offer partial-clone filters","msg":"fetching with git instead"/);
    assert.equal(await readFile(join(target, 'package.json'), 'utf8'), '{"name":"fixture"}\n');
    await harness.publisher.unpublish(target);
  });
});
