import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { open, readdir, readFile, stat, lstat, writeFile, mkdir as mkdirAsync } from 'node:fs/promises';
import { join } from 'node:path';
import { commitTree, generatedTree, git, tempDir, removeDir } from '../support/repoFixtures';
import { NodeHarness, run } from '../support/nodeHarness';
import { mountsAt, readMountTable } from '../../src/mount/mountTable';
import { Op } from '../../src/fuse/protocol';


describe('a mounted commit', () => {
  let harness: NodeHarness;
  let commit: string;
  let archiveDir: string;

  before(async () => {
    harness = await NodeHarness.start();
    commit = await commitTree(harness.repoDir('big.git'), generatedTree(3000));
    archiveDir = await tempDir('archive');
    await run('sh', ['-c', `git --git-dir '${harness.repoDir('big.git')}' -c tar.umask=022 archive ${commit} | tar -x -C '${archiveDir}'`]);
  });
  after(async () => {
    await harness.stop();
    await removeDir(archiveDir);
  });

  test('serves every file with the bytes and mode of git archive', async () => {
    const target = harness.target('archive-compare');
    const published = await harness.publisher.publish({ repository: harness.url('big.git'), target });
    assert.equal(published.resolved.commit, commit);
    await published.preparation.sizes.wait(30_000);
    const listing = (dir: string) => run('sh', ['-c', `cd '${dir}' && find . -path ./.git -prune -o -printf '%P|%M|%l|%s|%y\\n' | awk -F'|' '{ if ($5 == "d") $4 = "-"; print }' OFS='|' | sort`]);
    const [expected, actual] = await Promise.all([listing(archiveDir), listing(target)]);
    assert.ok(expected.stdout.split('\n').length > 3000);
    // The first line is the mount root itself, whose mode differs from a temporary directory's.
    const [want, got] = [expected.stdout.split('\n').filter((l) => !l.startsWith('|')), actual.stdout.split('\n').filter((l) => !l.startsWith('|'))];
    assert.deepEqual(got.filter((l) => !want.includes(l)), []);
    assert.deepEqual(want.filter((l) => !got.includes(l)), []);
    const diff = await run('diff', ['-r', '--no-dereference', '--exclude=.git', archiveDir, target]);
    assert.equal(diff.code, 0, diff.stdout.slice(0, 2000) + diff.stderr.slice(0, 2000));
    await harness.publisher.unpublish(target);
  });

  test('shows a submodule gitlink as an empty directory, symlinks as symlinks, executables 0755', async () => {
    const target = harness.target('kinds');
    await harness.publisher.publish({ repository: harness.url('big.git'), target });
    assert.deepEqual(await readdir(join(target, 'vendor/submodule')), []);
    assert.ok((await stat(join(target, 'vendor/submodule'))).isDirectory());
    const link = await lstat(join(target, 'links/to-readme'));
    assert.ok(link.isSymbolicLink());
    assert.equal(await readFile(join(target, 'links/to-readme'), 'utf8'), '# generated fixture\n');
    assert.equal((await stat(join(target, 'bin/run.sh'))).mode & 0o777, 0o755);
    assert.equal((await stat(join(target, 'README.md'))).mode & 0o777, 0o644);
    assert.equal((await stat(join(target, 'README.md'))).uid, 0);
    assert.equal((await stat(join(target, 'README.md'))).mtimeMs, 1_700_000_000_000, 'entries carry the commit time');
    assert.equal((await readFile(join(target, 'names/-leading-dash.txt'), 'utf8')), 'dash\n');
    assert.equal((await readFile(join(target, 'names/ünïcødé-文件.txt'), 'utf8')), 'unicode\n');
    assert.equal((await readFile(join(target, 'names/with space.txt'), 'utf8')), 'spaces\n');
    assert.equal((await stat(join(target, 'empty.txt'))).size, 0);
    await harness.publisher.unpublish(target);
  });

  test('refuses every write with EROFS', async () => {
    const target = harness.target('readonly');
    await harness.publisher.publish({ repository: harness.url('big.git'), target });
    await assert.rejects(writeFile(join(target, 'new-file'), 'x'), { code: 'EROFS' });
    await assert.rejects(open(join(target, 'README.md'), 'r+'), { code: 'EROFS' });
    await assert.rejects(mkdirAsync(join(target, 'new-dir')), { code: 'EROFS' });
    const rm = await run('rm', ['-f', join(target, 'README.md')]);
    assert.notEqual(rm.code, 0);
    assert.match(rm.stderr, /Read-only file system/);
    await harness.publisher.unpublish(target);
  });

  test('readdir gives every entry its type, so `find -type` over a fresh mount looks up no file', async () => {
    const types = await commitTree(harness.repoDir('types.git'), generatedTree(600, 9));
    const archived = await tempDir('types-archive');
    const target = harness.target('types');
    try {
      await run('sh', ['-c', `git --git-dir '${harness.repoDir('types.git')}' archive ${types} | tar -x -C '${archived}'`]);
      const published = await harness.publisher.publish({ repository: harness.url('types.git'), target });
      await published.preparation.sizes.wait(30_000);
      const listing = async (dir: string, type: string) => (await run('sh', ['-c', `cd '${dir}' && find . -mindepth 1 -path ./.git -prune -o -type ${type} -print | sort`])).stdout;
      const directories = (await listing(archived, 'd')).split('\n').length;
      const lookups = () => published.treeMount.filesystem.requests[Op.LOOKUP];
      const before = lookups();
      for (const type of ['f', 'l', 'd']) assert.equal(await listing(target, type), await listing(archived, type), `find -type ${type}`);
      // Three walks look up each directory at most once (the kernel keeps the entries), never a file.
      assert.ok(lookups() - before <= directories + 1, `${lookups() - before} lookups for ${directories} directories`);
    } finally {
      await harness.publisher.unpublish(target);
      await removeDir(archived);
    }
  });

  test('a warm read of every file reaches the server not at all: no FLUSH per close, lookup, attribute or read', async () => {
    await commitTree(harness.repoDir('warm.git'), generatedTree(300, 11));
    const target = harness.target('warm');
    try {
      const published = await harness.publisher.publish({ repository: harness.url('warm.git'), target });
      await published.preparation.sizes.wait(30_000);
      const readAll = () => run('sh', ['-c', `cd '${target}' && find . -type f -print0 | xargs -0 -n64 cat > /dev/null`]);
      // Twice: the first pass can leave a directory and a few of its files uncached (seen in 1 run
      // of 8: 2 READDIRPLUS and 4 READ in the pass after it); the pass measured is the third.
      await readAll();
      await readAll();
      const requests = published.treeMount.filesystem.requests;
      const before = Array.from(requests);
      await readAll();
      // STATFS is left out: whoever watches the mount table may ask it, and not per file.
      const reached = Array.from(requests).flatMap((count, op) => (count > before[op] && op !== Op.STATFS ? [`opcode ${op}: ${count - before[op]}`] : []));
      assert.deepEqual(reached, [], 'requests that reached the server during the warm read');
    } finally {
      await harness.publisher.unpublish(target);
    }
  });

  test('two consumers of one commit share one FUSE mount, and the second fetches nothing', async () => {
    const first = harness.target('shared-1');
    const second = harness.target('shared-2');
    const a = await harness.publisher.publish({ repository: harness.url('big.git'), target: first });
    await a.preparation.sizes.wait(30_000);
    await readFile(join(first, 'README.md'));
    harness.server.resetCounters();
    const b = await harness.publisher.publish({ repository: harness.url('big.git'), target: second });
    assert.equal(b.treeMount, a.treeMount);
    assert.equal(await readFile(join(second, 'README.md'), 'utf8'), '# generated fixture\n');
    // Only the access probe (ls-refs) crosses the network: no fetch, no object-info.
    assert.equal(harness.server.counters.fetches, 0);
    assert.equal(harness.server.counters.objectInfo, 0);
    const fuseMounts = (await readMountTable()).filter((m) => m.fsType === 'fuse.gitfs' && m.mountPoint.startsWith(harness.config.stateDir));
    assert.deepEqual(fuseMounts.map((m) => m.mountPoint), [a.treeMount.dir]);
    const binds = (await readMountTable()).filter((m) => m.mountPoint === first || m.mountPoint === second);
    assert.equal(binds.length, 2);
    assert.ok(binds.every((m) => m.options.split(',').includes('ro')));
    await harness.publisher.unpublish(first);
    assert.equal(await readFile(join(second, 'README.md'), 'utf8'), '# generated fixture\n');
    await harness.publisher.unpublish(second);
    assert.deepEqual(await mountsAt(a.treeMount.dir), []);
  });

  test('a find and stat of the whole tree right after ready downloads no blob contents', async () => {
    await harness.restart({ cold: true });
    harness.server.resetCounters();
    const target = harness.target('walk');
    const published = await harness.publisher.publish({ repository: harness.url('big.git'), target });
    await published.preparation.gate.wait(30_000);
    const walk = await run('sh', ['-c', `find '${target}' -exec stat -c '%s %a' {} + | wc -l`]);
    assert.ok(Number(walk.stdout.trim()) > 3000);
    await published.preparation.sizes.wait(30_000);
    assert.equal(harness.node.hydrator.stats().blobsFetched, 0);
    assert.equal(harness.node.cache.stats().blobs, 0);
    // One fetch for the commit's trees; sizes came from object-info, not from blobs.
    assert.equal(harness.server.counters.fetches, 1);
    assert.ok(harness.server.counters.objectInfo >= 1);
    await harness.publisher.unpublish(target);
  });

  test('ls -l of a directory of links fetches their targets together, not one by one', async () => {
    const bare = harness.repoDir('links.git');
    const links = Array.from({ length: 16 }, (_, i) => ({ path: `node_modules/.bin/tool-${i}`, symlink: `../tool-${i}/bin/cli.js` }));
    await commitTree(bare, [{ path: 'package.json', content: '{}\n' }, ...links]);
    const target = harness.target('links');
    const published = await harness.publisher.publish({ repository: harness.url('links.git'), target });
    await published.preparation.sizes.wait(30_000);
    harness.server.resetCounters();
    const listing = await run('ls', ['-l', join(target, 'node_modules/.bin')]);
    for (const link of links) assert.match(listing.stdout, new RegExp(`${link.path.split('/').pop()} -> \\.\\./${link.symlink.split('/')[1]}/bin/cli\\.js`));
    // The first link's fetch, then the other fifteen in one more at most.
    assert.ok(harness.server.counters.fetches <= 2, `${harness.server.counters.fetches} fetches`);
    await harness.publisher.unpublish(target);
  });

  test('fifty concurrent readers of one cold file cause one fetch', async () => {
    await harness.restart();
    const target = harness.target('concurrent');
    const published = await harness.publisher.publish({ repository: harness.url('big.git'), target });
    await published.preparation.sizes.wait(30_000);
    harness.server.resetCounters();
    const path = 'src/mod5/pkg5/file5.go';
    const file = join(target, path);
    const expected = await git(['--git-dir', harness.repoDir('big.git'), 'show', `${commit}:${path}`]);
    const oid = (await git(['--git-dir', harness.repoDir('big.git'), 'rev-parse', `${commit}:${path}`])).trim();
    const readers = await Promise.all(Array.from({ length: 50 }, () => run('cat', [file])));
    for (const r of readers) assert.equal(r.stdout, expected);
    // One request wanted this blob; its directory's other files follow in a prefetch of their own.
    assert.equal(harness.server.counters.wants.get(oid), 1);
    assert.ok(harness.server.counters.fetches <= 3);
    await harness.publisher.unpublish(target);
  });
});
