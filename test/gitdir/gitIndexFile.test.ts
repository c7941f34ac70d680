import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gitIndexFileOf, gitIndexFileSize } from '../../src/gitdir/gitIndexFile';
import { buildTreeIndex } from '../../src/tree/treeIndexBuilder';
import { TreeIndex } from '../../src/tree/treeIndex';
import { run } from '../support/nodeHarness';
import { commitTree, generatedTree, git, removeDir, tempDir } from '../support/repoFixtures';

let dir: string;
before(async () => (dir = await tempDir('gitindex')));
after(() => removeDir(dir));

/** The commit's tree index with every blob's size, from the repository itself; `sizeBefore` sees it before they are known. */
async function treeIndexOf(gitDir: string, commit: string, sizeBefore: (index: TreeIndex) => void = () => undefined): Promise<TreeIndex> {
  const lsTree = spawn('git', ['--git-dir', gitDir, 'ls-tree', '-r', '-t', '-z', commit]);
  const index = await buildTreeIndex(lsTree.stdout, commit);
  sizeBefore(index);
  const sizes = new Map<string, number>();
  for (const line of (await git(['--git-dir', gitDir, 'ls-tree', '-r', '-l', commit])).split('\n').filter(Boolean)) {
    const [, type, oid, size] = line.split('\t')[0].split(/\s+/);
    if (type === 'blob') sizes.set(oid, Number(size));
  }
  index.applySizes(sizes);
  return index;
}

/** A checkout as gitfs-csi serves it: every file's mtime the commit's time. */
async function checkoutServedAs(bare: string, name: string, seconds: number, gitConfig: string[]): Promise<string> {
  const work = join(dir, name);
  await git(['clone', '-q', ...gitConfig, bare, work]);
  await run('sh', ['-c', `cd '${work}' && git ls-files -z | xargs -0 touch -h -d @${seconds}`]);
  return work;
}

for (const objectFormat of ['sha1', 'sha256'] as const) {
  test(`an index written for the tree (${objectFormat}) is the one git writes, and git status finds the checkout clean without reading a file`, async () => {
    const bare = join(dir, `${objectFormat}.git`);
    // The fixture's submodule names a SHA-1 commit: a SHA-256 tree leaves it out.
    const entries = generatedTree(300).filter((e) => objectFormat === 'sha1' || !('gitlink' in e));
    const commit = await commitTree(bare, entries, { objectFormat });
    const seconds = Number((await git(['--git-dir', bare, 'log', '-1', '--format=%ct', commit])).trim());
    const work = await checkoutServedAs(bare, `work-${objectFormat}`, seconds, ['-c', 'core.checkStat=minimal']);
    await git(['-C', work, 'config', 'core.checkStat', 'minimal']);
    const own = await git(['-C', work, 'ls-files', '--stage']);

    let sizeBeforeBlobSizes = 0;
    const index = gitIndexFileOf(await treeIndexOf(bare, commit, (tree) => (sizeBeforeBlobSizes = gitIndexFileSize(tree))), seconds);
    assert.equal(sizeBeforeBlobSizes, index.length, 'its length is known from the paths alone, before any blob size');
    const indexPath = join(work, '.git', 'index');
    await writeFile(indexPath, index);
    // Later than every entry, or git would take each as racily clean and read it.
    await utimes(indexPath, seconds + 1, seconds + 1);

    assert.equal(await git(['-C', work, 'ls-files', '--stage']), own, 'the same entries, modes and ids as git\'s own index');
    // Were any entry's stat data off, git would read the file to compare it (strace shows the opens).
    const traced = await run('strace', ['-f', '-e', 'trace=open,openat', '-o', join(dir, `trace-${objectFormat}`), 'git', '-C', work, '-c', 'status.showUntrackedFiles=no', 'status', '--porcelain']);
    assert.equal(traced.code, 0, traced.stderr);
    assert.equal(traced.stdout, '', 'a clean tree');
    const opened = (await run('sh', ['-c', `grep -c 'src/mod' '${join(dir, `trace-${objectFormat}`)}' || true`])).stdout.trim();
    assert.equal(opened, '0', 'no file of the checkout was opened');

    // And a real change still shows.
    await writeFile(join(work, 'package.json'), '{"name":"changed"}\n');
    assert.equal(await git(['-C', work, 'status', '--porcelain', '--untracked-files=no']), ' M package.json\n');
  });
}
