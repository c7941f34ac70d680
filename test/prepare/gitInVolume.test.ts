import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { NodeHarness, run } from '../support/nodeHarness';
import { commitTree, generatedTree, git, removeDir, tempDir } from '../support/repoFixtures';

const MiB = 1024 * 1024;
const TAGGER = { GIT_COMMITTER_NAME: 'Releaser', GIT_COMMITTER_EMAIL: 'releaser@example.invalid', GIT_COMMITTER_DATE: '1700000100 +0000' };
const AUTHOR = ['GIT_AUTHOR_NAME=Pod', 'GIT_AUTHOR_EMAIL=pod@example.invalid', 'GIT_COMMITTER_NAME=Pod', 'GIT_COMMITTER_EMAIL=pod@example.invalid'];

/** git in a volume as a pod runs it: a child process in a network namespace of its own (only loopback, down). */
async function podGit(dir: string, args: string[], env: string[] = []): Promise<string> {
  const result = await run('unshare', ['-n', 'env', ...env, 'git', '-C', dir, ...args]);
  assert.equal(result.code, 0, `git ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

describe('git inside a volume', () => {
  let harness: NodeHarness;
  let commit: string;
  let shallowClone: string;
  const url = () => harness.url('repo.git');
  const hydrated = () => harness.node.hydrator.stats().blobsHydrated;

  before(async () => {
    harness = await NodeHarness.start();
    await commitTree(harness.repoDir('repo.git'), generatedTree(120), { message: 'first' });
    commit = await commitTree(harness.repoDir('repo.git'), generatedTree(300), { message: 'second' });
    shallowClone = join(await tempDir('shallow'), 'checkout');
    await git(['clone', '-q', '--depth', '1', `file://${harness.repoDir('repo.git')}`, shallowClone]);
  });
  after(async () => {
    await harness.stop();
    await removeDir(join(shallowClone, '..'));
  });

  test('a fresh volume answers log, rev-parse, ls-files, cat-file and fsck as a shallow clone does, with no network and no blob read', async () => {
    const target = harness.target('read-only');
    await harness.publisher.publish({ repository: url(), target, depth: 1 });
    const before = hydrated();
    assert.equal((await podGit(target, ['log', '-1', '--format=%H'])).trim(), commit);
    assert.equal((await podGit(target, ['rev-parse', 'HEAD'])).trim(), commit);
    assert.equal((await podGit(target, ['rev-parse', '--is-shallow-repository'])).trim(), 'true');
    assert.equal(await readFile(join(target, '.git/shallow'), 'utf8'), `${commit}\n`);
    assert.equal(await podGit(target, ['status', '--porcelain']), '');
    for (const args of [['branch', '--show-current'], ['ls-files', '-s'], ['log', '--format=%H %T %s'], ['cat-file', '-p', 'HEAD'], ['ls-tree', '-r', 'HEAD'], ['fsck', '--connectivity-only']]) {
      assert.equal(await podGit(target, args), await git(['-C', shallowClone, ...args]), args.join(' '));
    }
    assert.equal(hydrated(), before, 'no blob was hydrated');
    // Reading a blob through git hydrates that one blob (its loose object), and nothing beside it.
    assert.equal(await podGit(target, ['show', 'HEAD:README.md']), '# generated fixture\n');
    assert.equal(hydrated(), before + 1);
    // A blob of several stored blocks, read through git in pieces: the clone's bytes.
    const digest = async (dir: string) => (await run('unshare', ['-n', 'sh', '-c', 'git -C "$1" cat-file blob HEAD:assets/large.bin | sha256sum', 'sh', dir])).stdout;
    assert.equal(await digest(target), await digest(shallowClone));
    assert.equal(await podGit(target, ['describe', '--always']), await git(['-C', shallowClone, 'describe', '--always']));
    await harness.publisher.unpublish(target);
  });

  test('in a writable volume: status clean, diff of one edited file hydrates that blob alone, commit and log, a branch, a stash', async () => {
    const target = harness.target('writable');
    const other = harness.target('same-commit');
    await harness.publisher.publish({ repository: url(), target, depth: 1, writable: { limitBytes: 64 * MiB } });
    await harness.publisher.publish({ repository: url(), target: other, depth: 1 });
    let before = hydrated();
    assert.equal(await podGit(target, ['status', '--porcelain']), '');
    assert.equal(hydrated(), before, 'git status over the overlay reads no blob');

    // Overwritten without reading it: the blob of the committed file is what git diff needs.
    await run('sh', ['-c', 'echo "echo rewritten" > "$1/bin/run.sh" && echo new > "$1/new-file.txt"', 'sh', target]);
    assert.equal(hydrated(), before, 'a file written over is not fetched');
    assert.equal(await podGit(target, ['diff']), await diffOf(shallowClone, 'bin/run.sh', 'echo rewritten\n'));
    assert.equal(hydrated(), before + 1, 'git diff hydrated the edited file\'s blob and nothing else');
    assert.equal(await podGit(target, ['status', '--porcelain']), ' M bin/run.sh\n?? new-file.txt\n');

    await podGit(target, ['add', 'new-file.txt'], AUTHOR);
    await podGit(target, ['commit', '-q', '-am', 'edited in the pod'], AUTHOR);
    assert.deepEqual((await podGit(target, ['log', '-2', '--format=%s'])).split('\n').filter(Boolean), ['edited in the pod', 'second']);
    assert.equal(await podGit(target, ['status', '--porcelain']), '');
    await podGit(target, ['checkout', '-q', '-b', 'topic']);
    assert.equal((await podGit(target, ['branch', '--show-current'])).trim(), 'topic');
    await run('sh', ['-c', 'echo stashed >> "$1/package.json"', 'sh', target]);
    await podGit(target, ['stash', '-q'], AUTHOR);
    assert.equal((await podGit(target, ['stash', 'list'])).split('\n').filter(Boolean).length, 1);
    assert.equal(await podGit(target, ['status', '--porcelain']), '');
    assert.equal(await podGit(target, ['fsck', '--connectivity-only', '--no-dangling']), '');

    // The other volume of the commit, and the commit's own .git, saw none of it.
    assert.equal((await podGit(other, ['log', '-1', '--format=%H'])).trim(), commit);
    assert.equal(await podGit(other, ['status', '--porcelain']), '');
    await harness.publisher.unpublish(target);
    await harness.publisher.unpublish(other);
  });

  test('HEAD names the branch a volume asked for, a tag is there as asked; both volumes share the one tree mount of their commit', async () => {
    await git(['--git-dir', harness.repoDir('repo.git'), 'tag', '-a', '-m', 'release 1.0', 'v1.0', commit], { env: TAGGER });
    const onBranch = harness.target('on-branch');
    const onTag = harness.target('on-tag');
    const branch = await harness.publisher.publish({ repository: url(), ref: 'main', target: onBranch, depth: 1 });
    const tag = await harness.publisher.publish({ repository: url(), ref: 'v1.0', target: onTag, depth: 1 });
    assert.equal(branch.treeMount.dir, tag.treeMount.dir, 'one tree mount for the commit');
    assert.equal((await podGit(onBranch, ['branch', '--show-current'])).trim(), 'main');
    assert.equal((await podGit(onBranch, ['rev-parse', 'main'])).trim(), commit);
    assert.equal((await podGit(onTag, ['branch', '--show-current'])).trim(), '');
    // The tag object came alone, after the branch's volume had brought the commit.
    assert.equal((await podGit(onTag, ['describe'])).trim(), 'v1.0');
    assert.equal((await podGit(onTag, ['tag', '-n'])).trim(), 'v1.0            release 1.0');
    assert.equal(await podGit(onTag, ['cat-file', 'tag', 'v1.0']), await git(['--git-dir', harness.repoDir('repo.git'), 'cat-file', 'tag', 'v1.0']));
    assert.equal(await podGit(onTag, ['fsck', '--connectivity-only']), '');
    assert.equal((await podGit(onBranch, ['tag'])).trim(), '', 'the other volume\'s ref is not in this one');
    for (const target of [onBranch, onTag]) assert.equal(await podGit(target, ['status', '--porcelain']), '');
    // A writable volume of the branch starts on it, and its own branch moves with its commits.
    const writable = harness.target('writable-branch');
    await harness.publisher.publish({ repository: url(), ref: 'main', target: writable, depth: 1, writable: { limitBytes: 64 * MiB } });
    assert.equal((await podGit(writable, ['branch', '--show-current'])).trim(), 'main');
    await run('sh', ['-c', 'echo more >> "$1/README.md"', 'sh', writable]);
    await podGit(writable, ['commit', '-q', '-am', 'on main'], AUTHOR);
    assert.notEqual((await podGit(writable, ['rev-parse', 'main'])).trim(), commit);
    assert.equal((await podGit(onBranch, ['rev-parse', 'main'])).trim(), commit, 'the read-only volume\'s branch did not move');
    // A tag of a commit new to the node comes in the commit's own fetch.
    const side = await commitTree(harness.repoDir('repo.git'), generatedTree(20), { branch: 'side', message: 'side' });
    await git(['--git-dir', harness.repoDir('repo.git'), 'tag', '-a', '-m', 'side release', 'v2.0', side], { env: TAGGER });
    const onNewTag = harness.target('on-new-tag');
    const published = await harness.publisher.publish({ repository: url(), ref: 'v2.0', target: onNewTag, depth: 1 });
    assert.equal(published.resolved.commit, side);
    assert.equal((await podGit(onNewTag, ['describe'])).trim(), 'v2.0');
    assert.equal(await podGit(onNewTag, ['status', '--porcelain']), '');
    for (const target of [onBranch, onTag, writable, onNewTag]) await harness.publisher.unpublish(target);
  });

  test('git: false leaves .git out, read-only and writable', async () => {
    for (const writable of [undefined, { limitBytes: 64 * MiB }]) {
      const target = harness.target(writable ? 'no-git-writable' : 'no-git');
      await harness.publisher.publish({ repository: url(), target, depth: 1, git: false, writable });
      const listing = await readdir(target);
      assert.ok(!listing.includes('.git') && listing.includes('README.md'), listing.join(' '));
      const outside = await run('env', [`GIT_CEILING_DIRECTORIES=${dirname(target)}`, 'git', '-C', target, 'rev-parse', '--git-dir']);
      assert.notEqual(outside.code, 0);
      assert.match(outside.stderr, /not a git repository/);
      if (writable) await run('sh', ['-c', 'echo written > "$1/written.txt"', 'sh', target]);
      await harness.publisher.unpublish(target);
    }
    // Published before the tree is ready (readiness "gate"): the listing, once there, has no .git
    // either; and a volume of the same commit that has one names its branch.
    await commitTree(harness.repoDir('gated.git'), generatedTree(20, 3));
    const gated = harness.target('no-git-gated');
    const withGit = harness.target('gated');
    await harness.server.withFetchDelay(1000, async () => {
      const published = await harness.publisher.publish({ repository: harness.url('gated.git'), target: gated, depth: 1, git: false, readiness: 'gate' });
      await harness.publisher.publish({ repository: harness.url('gated.git'), ref: 'main', target: withGit, depth: 1, readiness: 'gate' });
      assert.equal(published.preparation.gate.state, 'pending');
      const listing = await readdir(gated);
      assert.ok(!listing.includes('.git') && listing.includes('README.md'), listing.join(' '));
    });
    assert.equal((await podGit(withGit, ['branch', '--show-current'])).trim(), 'main');
    await harness.publisher.unpublish(gated);
    await harness.publisher.unpublish(withGit);
  });

  test('a volume with its whole history: show, log -p and blame of older commits bring their blobs through the mount', async () => {
    const deep = harness.repoDir('deep.git');
    for (const version of [1, 2, 3]) {
      await commitTree(deep, [{ path: 'README.md', content: `version ${version}\n${'same line\n'.repeat(version)}` }, { path: 'kept.txt', content: 'kept\n' }], { message: `v${version}` });
    }
    const clone = join(await tempDir('deep'), 'checkout');
    await git(['clone', '-q', `file://${deep}`, clone]);
    const target = harness.target('deep');
    await harness.publisher.publish({ repository: harness.url('deep.git'), target });
    assert.equal((await podGit(target, ['rev-parse', '--is-shallow-repository'])).trim(), 'false');
    for (const args of [['show', 'HEAD~2:README.md'], ['log', '-p', '--format=%H %s'], ['blame', '--porcelain', 'README.md'], ['fsck', '--connectivity-only']]) {
      assert.equal(await podGit(target, args), await git(['-C', clone, ...args]), args.join(' '));
    }
    // An object of another repository on the node is not one of this volume's.
    const foreign = (await git(['-C', shallowClone, 'rev-parse', 'HEAD:README.md'])).trim(); // in the node's cache since the first test
    assert.notEqual((await run('unshare', ['-n', 'git', '-C', target, 'cat-file', '-e', foreign])).code, 0);
    await harness.publisher.unpublish(target);
    await removeDir(join(clone, '..'));
  });
});

/** What `git diff` prints when `path` of a clone is replaced by `content` (and put back after). */
async function diffOf(clone: string, path: string, content: string): Promise<string> {
  const original = await readFile(join(clone, path), 'utf8');
  await run('sh', ['-c', 'printf %s "$2" > "$1"', 'sh', join(clone, path), content]);
  try {
    return await git(['-C', clone, 'diff']);
  } finally {
    await run('sh', ['-c', 'printf %s "$2" > "$1"', 'sh', join(clone, path), original]);
  }
}
