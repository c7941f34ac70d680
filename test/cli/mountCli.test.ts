import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GitHttpServer } from '../support/gitHttpServer';
import { leftBehind, MAIN, runCli, startCli, untilOutput } from '../support/mountCli';
import { run } from '../support/nodeHarness';
import { commitTree, generatedTree, removeDir, tempDir } from '../support/repoFixtures';
import { mountsAt } from '../../src/mount/mountTable';

describe('gitfs-csi mount', () => {
  let dir: string;
  let server: GitHttpServer;
  let n = 0;
  /** A fresh, empty mountpoint, cache and state directory for one run (a test writes only under its own directory). */
  const fresh = async () => {
    const mountpoint = join(dir, `mnt-${++n}`);
    await mkdir(mountpoint);
    return { mountpoint, cache: join(dir, `cache-${n}`), state: join(dir, `state-${n}`) };
  };
  before(async () => {
    dir = await tempDir('cli');
    server = new GitHttpServer(join(dir, 'served'));
    await server.start();
    await commitTree(join(dir, 'served', 'demo.git'), generatedTree(100));
  });
  after(async () => {
    await server.stop();
    await removeDir(dir);
  });

  test('mounts in the foreground, serves files, logs JSON, and unmounts cleanly on SIGTERM', async () => {
    const { mountpoint, cache, state } = await fresh();
    const cli = startCli(['mount', server.url('demo.git'), mountpoint, '--cache-dir', cache, '--state-dir', state, '--ref', 'main']);
    await untilOutput(cli, /^ready /m);
    const pid = await cli.pid();
    assert.deepEqual((await readdir(mountpoint)).slice(0, 3), ['.git', 'README.md', 'assets']);
    assert.equal(await readFile(join(mountpoint, 'package.json'), 'utf8'), '{"name":"fixture"}\n');
    assert.equal((await run('git', ['-C', mountpoint, 'branch', '--show-current'])).stdout, 'main\n');
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 0);
    assert.deepEqual(await leftBehind({ pid, dir, mountpoint, stateDir: state }), []);
    assert.deepEqual(await readdir(mountpoint), [], 'the mountpoint stays, empty');
    assert.match(cli.stderr, /unmounted .*: \d+ blobs/);
    const logLines = cli.stderr.split('\n').filter((l) => l.startsWith('{'));
    assert.ok(logLines.length > 0);
    for (const line of logLines) assert.equal(typeof JSON.parse(line).msg, 'string');
    assert.ok(logLines.some((l) => /"phase":"indexing"/.test(l)));
  });

  test('SIGINT while preparing unmounts, prints no ready line and leaves nothing', async () => {
    const { mountpoint, cache, state } = await fresh();
    await server.withFetchDelay(2000, async () => {
      const cli = startCli(['mount', server.url('demo.git'), mountpoint, '--cache-dir', cache, '--state-dir', state]);
      const pid = await cli.pid();
      const deadline = Date.now() + 10_000;
      while ((await mountsAt(mountpoint)).length === 0 && Date.now() < deadline) await sleep(20);
      assert.equal((await mountsAt(mountpoint)).length, 1);
      cli.child.kill('SIGINT');
      assert.equal(await cli.exited, 0, cli.stderr);
      assert.doesNotMatch(cli.stdout, /ready/);
      assert.deepEqual(await leftBehind({ pid, dir, mountpoint, stateDir: state }), []);
    });
  });

  test('a second mount onto a mountpoint another one serves is refused, naming it, and the first keeps serving', async () => {
    const { mountpoint, cache, state } = await fresh();
    const first = startCli(['mount', server.url('demo.git'), mountpoint, '--cache-dir', cache, '--state-dir', state]);
    await untilOutput(first, /^ready /m);
    const second = await runCli(['mount', server.url('demo.git'), mountpoint, '--cache-dir', cache, '--state-dir', join(dir, 'state-second')]);
    assert.equal(second.code, 1, second.stderr);
    assert.match(second.stderr, new RegExp(`^gitfs-csi: mountpoint ${mountpoint} is already a mount point \\(fuse\\.gitfs gitfs:`));
    assert.equal(second.stdout, '');
    assert.deepEqual(await leftBehind({ pid: second.pid, dir: join(dir, 'nothing'), mountpoint: join(dir, 'nothing'), stateDir: join(dir, 'state-second') }), []);
    assert.equal(await readFile(join(mountpoint, 'package.json'), 'utf8'), '{"name":"fixture"}\n');
    const pid = await first.pid();
    first.child.kill('SIGTERM');
    assert.equal(await first.exited, 0);
    assert.deepEqual(await leftBehind({ pid, dir, mountpoint, stateDir: state }), []);
  });

  test('signals while unmounting never abandon the cleanup: a second is reported, a third detaches at once', async () => {
    const cases = [[['SIGINT', 'SIGTERM'], []], [['SIGINT', 'SIGTERM', 'SIGINT'], []], [['SIGINT', 'SIGTERM', 'SIGINT'], ['--writable']]] as const;
    for (const [signals, extra] of cases) {
      const { mountpoint, cache, state } = await fresh();
      const cli = startCli(['mount', server.url('demo.git'), mountpoint, '--cache-dir', cache, '--state-dir', state, ...extra]);
      await untilOutput(cli, /^ready /m);
      const pid = await cli.pid();
      // Different signals in a row: a pending signal absorbs another of its kind, never one of another.
      for (const signal of signals) {
        cli.child.kill(signal);
        await sleep(5);
      }
      assert.equal(await cli.exited, 0, `${signals.join(' ')}: ${cli.stderr}`);
      assert.match(cli.stderr, new RegExp(`still unmounting ${mountpoint}`));
      assert.deepEqual(await leftBehind({ pid, dir, mountpoint, stateDir: state }), [], [...signals, ...extra].join(' '));
    }
    assert.deepEqual(await readdir(join(dir, `cache-${n}`, 'layers')), ['spares'], 'the writable layer went too');
  });

  test('a mount that fails at any step leaves no mount, state directory or process behind', async () => {
    const failing: Array<[string, string[], RegExp, () => void]> = [
      ['repository not found', [server.url('missing.git')], /was not found/, () => undefined],
      ['unknown ref', [server.url('demo.git'), '--ref', 'no-such-branch'], /ref "no-such-branch" was not found/, () => undefined],
      ['fetch refused after the mount', [server.url('demo.git')], /preparation failed/, () => (server.options.rejectFetchesWith = 403)],
    ];
    for (const [what, args, pattern, arrange] of failing) {
      const { mountpoint, cache, state } = await fresh();
      arrange();
      try {
        const result = await runCli(['mount', args[0], mountpoint, '--cache-dir', cache, '--state-dir', state, ...args.slice(1)]);
        assert.equal(result.code, 1, `${what}: ${result.stderr}`);
        assert.match(result.stderr, pattern, what);
        assert.doesNotMatch(result.stdout, /ready/, what);
        assert.deepEqual(await leftBehind({ pid: result.pid, dir, mountpoint, stateDir: state }), [], what);
      } finally {
        server.options.rejectFetchesWith = undefined;
      }
    }
  });

  test('--writable takes writes in a layer of its own on disk, and unmounting deletes them with nothing left behind', async () => {
    const { mountpoint, cache, state } = await fresh();
    const cli = startCli(['mount', server.url('demo.git'), mountpoint, '--cache-dir', cache, '--state-dir', state, '--writable', '--write-limit', '32Mi']);
    await untilOutput(cli, /^ready /m);
    const pid = await cli.pid();
    const edit = await run('sh', ['-c', 'echo local >> "$1/README.md" && mkdir "$1/out" && echo built > "$1/out/result" && rm "$1/package.json" && cat "$1/README.md" "$1/out/result"', 'sh', mountpoint]);
    assert.equal(edit.stdout, '# generated fixture\nlocal\nbuilt\n', edit.stderr);
    assert.deepEqual((await mountsAt(mountpoint)).map((m) => m.fsType), ['overlay']);
    assert.deepEqual((await readdir(join(cache, 'layers'))).filter((name) => name !== 'spares').length, 1, 'the layer is on disk, beside the cache');
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 0);
    assert.deepEqual(await leftBehind({ pid, dir, mountpoint, stateDir: state }), []);
    assert.deepEqual(await readdir(join(cache, 'layers')), ['spares'], 'only a formatted spare for the next --writable mount');
    assert.deepEqual(await readdir(mountpoint), []);
  });

  test('--no-git mounts the tree without .git, and leaves nothing behind', async () => {
    const { mountpoint, cache, state } = await fresh();
    const cli = startCli(['mount', server.url('demo.git'), mountpoint, '--cache-dir', cache, '--state-dir', state, '--no-git']);
    await untilOutput(cli, /^ready /m);
    const pid = await cli.pid();
    assert.deepEqual((await readdir(mountpoint)).slice(0, 2), ['README.md', 'assets']);
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 0);
    assert.deepEqual(await leftBehind({ pid, dir, mountpoint, stateDir: state }), []);
  });

  test('bad arguments name the field and exit 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['mount'], /arguments: expected <repository> <mountpoint>/],
      [['mount', server.url('demo.git'), join(dir, 'x'), '--depth', 'deep'], /--depth: "deep" is not a non-negative integer/],
      [['mount', server.url('demo.git'), join(dir, 'x'), '--cache-max-bytes', '10X'], /--cache-max-bytes: "10X" is not a size/],
      [['mount', 'ftp://127.0.0.1/r', join(dir, 'x')], /repository: .*"ftp" transport/],
      [['mount', server.url('demo.git'), join(dir, 'x'), '--ref', 'a..b'], /ref: "a\.\.b" is not a valid/],
      [['mount', server.url('demo.git'), join(dir, 'x'), '--write-limit', '1Gi'], /--write-limit: applies to --writable mounts only/],
      [['mount', server.url('demo.git'), join(dir, 'x'), '--writable', '--write-limit', '1Mi'], /--write-limit: 1\.0 MiB is under the smallest writable layer/],
      [['frobnicate'], /unknown command "frobnicate"/],
      [['mount', server.url('demo.git'), join(dir, 'x'), '--colour'], /^gitfs-csi mount: unknown option --colour\n\nusage: gitfs-csi mount/],
      [['mount', 'file:///srv/repo.git', join(dir, 'x')], /repository: "file:\/\/\/srv\/repo\.git" uses file:\/\/, which is disabled without --allow-file/],
      [['mount', '/srv/repo.git', join(dir, 'x')], /is not a URL; .* \(a local path needs --allow-file\)/],
    ];
    for (const [args, pattern] of cases) {
      const result = await runCli(args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, pattern);
    }
  });

  test('an unknown host fails clearly (in a network namespace of its own, so no query leaves this machine)', async () => {
    const { mountpoint, cache, state } = await fresh();
    const result = await run('unshare', ['--net', process.execPath, MAIN, 'mount', 'https://no-such-host.invalid/r.git', mountpoint, '--cache-dir', cache, '--state-dir', state]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /cannot resolve the host of https:\/\/no-such-host\.invalid\/r\.git/);
  });

  test('with --allow-remote, a remote it does not name or a loopback address under * is refused, leaving nothing behind', async () => {
    const cases: Array<[string, RegExp]> = [
      ['github.com/acme', /repository http:\/\/127\.0\.0\.1:\d+\/demo\.git is refused by the remote policy: it matches none of the remotes this node allows \(--allow-remote github\.com\/acme\)/],
      ['*', /127\.0\.0\.1 is a loopback address; a volume reaches it only when the node allows the remote by name \(--allow-remote 127\.0\.0\.1\)/],
    ];
    for (const [pattern, message] of cases) {
      const { mountpoint, cache, state } = await fresh();
      const result = await runCli(['mount', server.url('demo.git'), mountpoint, '--allow-remote', pattern, '--cache-dir', cache, '--state-dir', state]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, message);
      assert.equal(await stat(state).then(() => true, () => false), false, 'the state directory is removed');
      assert.deepEqual(await readdir(mountpoint), []);
    }
  });

  test('credentials in the repository URL never appear in output', async () => {
    const { mountpoint, cache, state } = await fresh();
    const result = await runCli(['mount', server.url('missing.git', 'someone:TopSecret123'), mountpoint, '--cache-dir', cache, '--state-dir', state]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /was not found/);
    assert.doesNotMatch(result.stderr + result.stdout, /TopSecret123/);
  });
});
