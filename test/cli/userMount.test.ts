import assert from 'node:assert/strict';
import { chmod, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GitHttpServer } from '../support/gitHttpServer';
import { AS_NOBODY, dirsOfNobody, leftBehind, startCli, untilOutput } from '../support/mountCli';
import { run } from '../support/nodeHarness';
import { commitTree, generatedTree, removeDir, tempDir } from '../support/repoFixtures';
import { MountNamespace } from '../support/mountNamespace';

/** Every entry under `dir` as `path|mode|link target|size|type`, listed by the unprivileged user (only it can see its mount). */
async function listing(asUser: string[], dir: string): Promise<string[]> {
  const result = await run(asUser[0], [...asUser.slice(1), 'sh', '-c', `cd '${dir}' && find . -mindepth 1 -path ./.git -prune -o -printf '%P|%M|%l|%s|%y\\n' | awk -F'|' '{ if ($5 == "d") $4 = "-"; print }' OFS='|' | sort`]);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.split('\n').filter(Boolean);
}

describe('gitfs-csi mount as a user, through fusermount3', () => {
  let dir: string;
  let server: GitHttpServer;
  let archive: string;
  let commit: string;
  let namespace: MountNamespace;
  /** Runs a command as the user, in the namespace where the user may open /dev/fuse (and only it sees its mount). */
  let asUser: string[];
  before(async () => {
    dir = await tempDir('cli-user');
    // The unprivileged user reaches its own directories in here, and the archive to compare with.
    await chmod(dir, 0o755);
    server = new GitHttpServer(join(dir, 'served'));
    await server.start();
    commit = await commitTree(join(dir, 'served', 'demo.git'), generatedTree(300));
    archive = join(dir, 'archive');
    await mkdir(archive);
    await run('sh', ['-c', `git --git-dir '${join(dir, 'served', 'demo.git')}' -c tar.umask=022 archive ${commit} | tar -x -C '${archive}'`]);
    namespace = await MountNamespace.create('open-to-users', join(dir, 'namespace'));
    asUser = [...namespace.enter, ...AS_NOBODY];
  });
  after(async () => {
    await namespace.close();
    await server.stop();
    await removeDir(dir);
  });

  /** A home, a runtime directory, a TMPDIR and a mountpoint owned by the user. */
  const userDirs = async (name: string) => {
    const paths = Object.fromEntries(['home', 'runtime', 'tmp', 'mnt'].map((d) => [d, join(dir, name, d)])) as Record<'home' | 'runtime' | 'tmp' | 'mnt', string>;
    await mkdir(join(dir, name));
    await dirsOfNobody(Object.values(paths), 0o700);
    return paths;
  };

  for (const runtime of [true, false]) {
    test(`mounts at the mountpoint itself, serves git archive's bytes and modes, and SIGTERM leaves nothing (${runtime ? 'state in $XDG_RUNTIME_DIR' : 'no $XDG_RUNTIME_DIR: a private directory in $TMPDIR'})`, async () => {
      const paths = await userDirs(runtime ? 'with-runtime' : 'without-runtime');
      const env = { PATH: process.env.PATH, HOME: paths.home, TMPDIR: paths.tmp, ...(runtime ? { XDG_RUNTIME_DIR: paths.runtime } : {}) };
      // One names the branch, the other takes the remote's HEAD: the mount's own .git names main either way.
      const cli = startCli(['mount', server.url('demo.git'), paths.mnt, ...(runtime ? [] : ['--ref', 'main'])], { wrap: asUser, env });
      await untilOutput(cli, new RegExp(`^ready ${paths.mnt} ${commit}$`, 'm'));
      const pid = await cli.pid();
      // One FUSE mount, made by fusermount3 for this user, and no bind mount.
      const mounts = (await namespace.mounts()).filter((m) => m.mountPoint === paths.mnt);
      assert.deepEqual(mounts.map((m) => m.fsType), ['fuse.gitfs']);
      assert.match(mounts[0].options, /\bro\b/);
      const stateDir = runtime ? join(paths.runtime, 'gitfs-csi', `mount-${pid}`) : join(paths.tmp, (await readdir(paths.tmp))[0]);
      assert.ok((await readdir(runtime ? join(paths.runtime, 'gitfs-csi') : paths.tmp)).length === 1, 'one state directory');

      const [want, got] = await Promise.all([listing(asUser, archive), listing(asUser, paths.mnt)]);
      assert.ok(want.length > 300);
      assert.deepEqual(got, want);
      const diff = await run(asUser[0], [...asUser.slice(1), 'diff', '-r', '--no-dereference', '--exclude=.git', archive, paths.mnt]);
      assert.equal(diff.code, 0, diff.stdout.slice(0, 2000) + diff.stderr.slice(0, 2000));
      const owner = await run(asUser[0], [...asUser.slice(1), 'stat', '-c', '%u:%g', join(paths.mnt, 'README.md')]);
      assert.equal(owner.stdout.trim(), '65534:65534', "the user's own files");
      const userGit = async (...args: string[]) => (await run(asUser[0], [...asUser.slice(1), 'env', `HOME=${paths.home}`, 'git', '-C', paths.mnt, ...args])).stdout;
      assert.equal((await userGit('rev-parse', 'HEAD')).trim(), commit);
      assert.equal(await userGit('status', '--porcelain'), '');
      assert.equal((await userGit('branch', '--show-current')).trim(), 'main');

      cli.child.kill('SIGTERM');
      assert.equal(await cli.exited, 0, cli.stderr);
      assert.match(cli.stderr, /unmounted .*: \d+ blobs/);
      assert.deepEqual(await leftBehind({ pid, dir, mountpoint: paths.mnt, stateDir, mountTable: () => namespace.mounts() }), []);
      assert.deepEqual(await readdir(paths.mnt), [], 'the mountpoint stays, empty');
      assert.ok((await readdir(join(paths.home, '.cache', 'gitfs-csi'))).length > 0, 'the cache stays in ~/.cache/gitfs-csi for the next mount');
      if (!runtime) assert.deepEqual(await readdir(paths.tmp), []);
    });
  }
});
