import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LINUX_5_10 } from '../../src/fuse/initNegotiation';
import { Published } from '../../src/prepare/publisher';
import { NodeHarness, run } from '../support/nodeHarness';
import { commitTree, FixtureEntry, generatedTree, removeDir, tempDir } from '../support/repoFixtures';

/** Reads every file given on stdin through mmap, pread at random offsets and O_DIRECT, and compares each with the copy under argv[2]. */
const READ_EVERY_WAY = `
import mmap, os, random, sys
volume, expected = sys.argv[1], sys.argv[2]
bad = []
random.seed(7)
for path in sys.stdin.read().split('\\0'):
    if not path: continue
    want = open(os.path.join(expected, path), 'rb').read()
    fd = os.open(os.path.join(volume, path), os.O_RDONLY)
    try:
        if want:
            with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as m:
                if m[:] != want: bad.append('mmap ' + path)
        for _ in range(4):
            at = random.randrange(len(want) + 1)
            n = random.randrange(1, 70000)
            if os.pread(fd, n, at) != want[at:at + n]: bad.append('pread %s at %d' % (path, at))
    finally:
        os.close(fd)
    fd = os.open(os.path.join(volume, path), os.O_RDONLY | os.O_DIRECT)
    try:
        buf = mmap.mmap(-1, max(4096, (len(want) + 4095) // 4096 * 4096))
        got = os.readv(fd, [buf])
        if buf[:got] != want: bad.append('O_DIRECT ' + path)
    finally:
        os.close(fd)
print('\\n'.join(bad[:20]))
`;

/** Lists a directory with readdir while recording telldir before each entry, then seeks back to a sample of positions. */
const SEEK_AND_TELL = `
opendir(my $d, $ARGV[0]) or die "$!";
my (@names, @positions);
while (1) { my $p = telldir($d); my $n = readdir($d); last unless defined $n; push @names, $n; push @positions, $p; }
my $bad = 0;
for (my $i = 0; $i < @names; $i += 97) { seekdir($d, $positions[$i]); my $n = readdir($d); $bad++ unless defined $n && $n eq $names[$i]; }
seekdir($d, $positions[-1]); readdir($d); $bad++ if defined readdir($d);
print scalar(@names), " $bad\\n";
`;

function wideDirectory(): FixtureEntry[] {
  return Array.from({ length: 10_000 }, (_, i) => ({ path: `wide/entry-${String(i).padStart(5, '0')}.txt`, content: `${i}\n` }));
}

describe('the FUSE protocol, against the real kernel', () => {
  let harness: NodeHarness;
  let archive: string;
  let commit: string;

  before(async () => {
    harness = await NodeHarness.start();
    commit = await commitTree(harness.repoDir('proto.git'), [...generatedTree(800, 3), ...wideDirectory()]);
    archive = await tempDir('proto-archive');
    await run('sh', ['-c', `git --git-dir '${harness.repoDir('proto.git')}' archive ${commit} | tar -x -C '${archive}'`]);
  });
  after(async () => {
    await harness.stop();
    await removeDir(archive);
  });

  /** Runs `work` on a fresh publication of `repository` (sizes known), unpublished afterwards whatever happens. */
  async function onVolume(name: string, repository: string, work: (target: string, published: Published) => Promise<void>): Promise<void> {
    const target = harness.target(name);
    const published = await harness.publisher.publish({ repository: harness.url(repository), target });
    try {
      await published.preparation.sizes.wait(30_000);
      await work(target, published);
    } finally {
      await harness.publisher.unpublish(target);
    }
  }

  test('every file equals git archive through cat, cp, mmap, pread at random offsets and O_DIRECT', async () => {
    await onVolume('every-way', 'proto.git', async (target) => {
      const copy = await tempDir('proto-copy');
      try {
        const cat = await run('sh', ['-c', `cd '${target}' && find . -path ./.git -prune -o -type f -print0 | sort -z | xargs -0 cat | sha256sum; cd '${archive}' && find . -type f -print0 | sort -z | xargs -0 cat | sha256sum`]);
        const [ours, theirs] = cat.stdout.trim().split('\n');
        assert.equal(ours, theirs, 'cat of every file');
        assert.equal((await run('cp', ['-a', `${target}/.`, copy])).code, 0);
        const diff = await run('diff', ['-r', '--no-dereference', '--exclude=.git', archive, copy]);
        assert.equal(diff.code, 0, `cp: ${diff.stdout.slice(0, 1000)}`);
        const script = join(copy, 'read.py');
        await writeFile(script, READ_EVERY_WAY);
        const read = await run('sh', ['-c', `cd '${archive}' && find . -type f -print0 | python3 '${script}' '${target}' '${archive}'`]);
        assert.equal(read.code, 0, read.stderr);
        assert.equal(read.stdout.trim(), '', 'mmap, pread and O_DIRECT');
      } finally {
        await removeDir(copy);
      }
    });
  });

  test('`ls -la` shows . and .., `df` shows the tree, and 10,000 entries list whole through seekdir and telldir', async () => {
    await onVolume('listing', 'proto.git', async (target, published) => {
      const ls = (await run('ls', ['-la', join(target, 'names')])).stdout.split('\n');
      assert.ok(ls.some((l) => / \.$/.test(l)) && ls.some((l) => / \.\.$/.test(l)), ls.join('\n'));
      const index = published.preparation.gate.value!.index;
      const df = (await run('df', ['-B1', '--output=size,itotal', target])).stdout.trim().split('\n')[1].trim().split(/\s+/).map(Number);
      assert.deepEqual(df, [Math.ceil(index.totalBytes / 4096) * 4096, index.count]);
      const seek = await run('perl', ['-e', SEEK_AND_TELL, join(target, 'wide')]);
      assert.equal(seek.stdout.trim(), '10002 0', seek.stderr);
    });
  });

  test('what the kernel looks up it forgets again: lookup counts go back to zero when the kernel drops its caches', async () => {
    await onVolume('forget', 'proto.git', async (target, published) => {
      await run('sh', ['-c', `find '${target}' > /dev/null && cat '${target}/README.md' > /dev/null`]);
      const lookups = published.treeMount.filesystem.lookups!;
      const held = () => lookups.reduce((sum, n) => sum + n, 0);
      assert.ok(held() > 10_000, `${held()} lookups held after a walk`);
      for (let i = 0; i < 20 && held() > 0; i++) {
        await writeFile('/proc/sys/vm/drop_caches', '2');
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(held(), 0, 'FORGET and BATCH_FORGET gave back every lookup');
      assert.ok(lookups.every((n) => n >= 0));
    });
  });

  test('a reader interrupted by a signal while its blob is fetched gets EINTR, and the mount goes on serving', async () => {
    // Content of its own, so that no earlier test's reads cached it.
    await commitTree(harness.repoDir('interrupt.git'), [{ path: 'slow.txt', content: 'slow\n' }, { path: 'other.txt', content: 'other\n' }]);
    await onVolume('interrupt', 'interrupt.git', async (target) => {
      const file = join(target, 'slow.txt');
      // A synchronous read (O_DIRECT: buffered reads go out as background readahead, which only a
      // fatal signal ends); Perl's sysread reports one that a signal with a handler interrupted as EINTR.
      const interrupted = await harness.server.withFetchDelay(3000, () =>
        run('perl', ['-MFcntl', '-e', `$SIG{ALRM} = sub {}; sysopen(my $f, $ARGV[0], O_RDONLY | O_DIRECT) or die "$!"; alarm 1; my $n = sysread($f, my $b, 4096); print defined $n ? "read $n" : ($!{EINTR} ? 'EINTR' : "error $!")`, file]),
      );
      assert.equal(interrupted.stdout, 'EINTR', interrupted.stderr);
      assert.equal((await run('cat', [file])).stdout, 'slow\n');
      assert.equal((await run('cat', [join(target, 'other.txt')])).stdout, 'other\n');
    });
  });
});

describe('the same server, negotiated as with Linux 5.10 (protocol 7.32, no resend, no passthrough)', () => {
  let harness: NodeHarness;

  before(async () => {
    harness = await NodeHarness.start({ config: { kernelProfile: LINUX_5_10 } });
  });
  after(() => harness.stop());

  test('serves every file and listing as git archive has them', async () => {
    const commit = await commitTree(harness.repoDir('old.git'), generatedTree(600, 5));
    const archive = await tempDir('old-archive');
    const target = harness.target('old');
    try {
      await run('sh', ['-c', `git --git-dir '${harness.repoDir('old.git')}' archive ${commit} | tar -x -C '${archive}'`]);
      const published = await harness.publisher.publish({ repository: harness.url('old.git'), target });
      await published.preparation.sizes.wait(30_000);
      assert.equal(published.treeMount.negotiated!.minor, 32);
      const diff = await run('diff', ['-r', '--no-dereference', '--exclude=.git', archive, target]);
      assert.equal(diff.code, 0, diff.stdout.slice(0, 2000));
    } finally {
      await harness.publisher.unpublish(target);
      await removeDir(archive);
    }
  });
});
