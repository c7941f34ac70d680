import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GitHttpServer } from '../support/gitHttpServer';
import { AS_NOBODY, dirsOfNobody, leftBehind, MAIN, runCli } from '../support/mountCli';
import { run } from '../support/nodeHarness';
import { commitTree, generatedTree, removeDir, tempDir } from '../support/repoFixtures';
import { MountEntry, mountsAt } from '../../src/mount/mountTable';
import { DevFuse, MountNamespace } from '../support/mountNamespace';

describe('gitfs-csi mount: bad mountpoints and FUSE faults', () => {
  let dir: string;
  let server: GitHttpServer;
  let n = 0;
  /** A fresh mountpoint, cache directory and TMPDIR, owned by the unprivileged user. */
  const fresh = async () => {
    const [mountpoint, cache, tmp] = ['mnt', 'cache', 'tmp'].map((name) => join(dir, `${name}-${++n}`));
    await dirsOfNobody([mountpoint, cache, tmp]);
    return { mountpoint, cache, tmp, env: { PATH: process.env.PATH, HOME: tmp, TMPDIR: tmp } };
  };
  /** Nothing mounted, no state directory (root's named one, or the user's private one, both in `tmp`), no process. */
  const assertNothingLeft = async (pid: number, paths: { mountpoint: string; cache: string; tmp: string }, mountTable?: () => Promise<MountEntry[]>) => {
    assert.deepEqual(await leftBehind({ pid, dir: paths.cache, mountpoint: paths.mountpoint, stateDir: join(paths.tmp, 'state'), mountTable }), []);
    assert.deepEqual(await readdir(paths.tmp), [], 'no private state directory is left');
  };
  before(async () => {
    dir = await tempDir('cli-faults');
    // The unprivileged user runs the CLI against directories in here.
    await chmod(dir, 0o755);
    server = new GitHttpServer(join(dir, 'served'));
    await server.start();
    await commitTree(join(dir, 'served', 'demo.git'), generatedTree(10));
  });
  after(async () => {
    await server.stop();
    await removeDir(dir);
  });

  test('a mountpoint that is missing, not a directory, not empty or already a mount point is refused by name (exit 1)', async () => {
    const missing = join(dir, 'missing');
    const file = join(dir, 'a-file');
    await writeFile(file, 'x');
    const full = join(dir, 'full');
    await mkdir(full);
    await writeFile(join(full, 'keep.txt'), 'mine');
    const busy = join(dir, 'busy');
    await mkdir(busy);
    await run('mount', ['-t', 'tmpfs', 'sometmpfs', busy]);
    try {
      const cases: Array<[string, string]> = [
        [missing, 'does not exist'],
        [file, 'is not a directory'],
        [full, 'is not empty \\(1 entries\\)'],
        [busy, 'is already a mount point \\(tmpfs sometmpfs\\)'],
      ];
      for (const [path, why] of cases) {
        for (const wrap of [[], AS_NOBODY]) {
          const result = await runCli(['mount', server.url('demo.git'), path, '--cache-dir', join(dir, 'cache-bad'), '--state-dir', join(dir, 'state-bad')], { wrap });
          assert.equal(result.code, 1, `${path}: ${result.stderr}`);
          assert.match(result.stderr, new RegExp(`^gitfs-csi: mountpoint ${path} ${why}[^\n]*\n$`));
          assert.deepEqual(await leftBehind({ pid: result.pid, dir: join(dir, 'cache-bad'), mountpoint: path === busy ? undefined : path, stateDir: join(dir, 'state-bad') }), []);
        }
      }
      assert.deepEqual((await mountsAt(busy)).map((m) => m.fsType), ['tmpfs'], 'what was mounted there stays');
    } finally {
      await run('umount', [busy]);
    }
  });

  test('/dev/fuse missing or not permitted is named, and nothing is left behind (in a mount namespace of its own)', async () => {
    const cases: Array<[kind: DevFuse, wrap: string[], expected: RegExp]> = [
      ['missing', [], /^gitfs-csi: \/dev\/fuse is missing/m],
      ['not-permitted', [], /^gitfs-csi: \/dev\/fuse cannot be opened: not permitted \(EACCES\)/m],
      // A user's fusermount3 opens /dev/fuse as root, and is refused just the same.
      ['not-permitted', AS_NOBODY, /^gitfs-csi: cannot mount .*mnt-\d+ with fusermount3: fusermount3: failed to open \/dev\/fuse: Permission denied/m],
    ];
    for (const [kind, wrap, expected] of cases) {
      const paths = await fresh();
      const namespace = await MountNamespace.create(kind, join(dir, `scratch-${n}`));
      try {
        // Root names its state directory (a test writes only under its own); the user's is private, in TMPDIR.
        const state = wrap.length === 0 ? ['--state-dir', join(paths.tmp, 'state')] : [];
        const command = [...namespace.enter, ...wrap, process.execPath, MAIN, 'mount', server.url('demo.git'), paths.mountpoint, '--cache-dir', paths.cache, ...state];
        const result = await runCli([], { command, env: paths.env });
        assert.equal(result.code, 1, `${kind} ${wrap.join(' ')}: ${result.stderr}`);
        assert.match(result.stderr, expected);
        await assertNothingLeft(result.pid, paths, () => namespace.mounts());
      } finally {
        await namespace.close();
      }
    }
  });

  test('a user without fusermount3 on PATH is told so, naming the mountpoint', async () => {
    const paths = await fresh();
    // git stays on PATH (the CLI runs it); fusermount3 does not.
    const bin = join(dir, 'bin-without-fusermount');
    await mkdir(bin);
    await symlink('/usr/bin/git', join(bin, 'git'));
    const result = await runCli(['mount', server.url('demo.git'), paths.mountpoint, '--cache-dir', paths.cache], { wrap: AS_NOBODY, env: { ...paths.env, PATH: bin } });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, new RegExp(`^gitfs-csi: cannot mount ${paths.mountpoint}: fusermount3 is not on PATH, and a user \\(uid 65534\\) mounts FUSE through it`, 'm'));
    await assertNothingLeft(result.pid, paths);
  });
});
