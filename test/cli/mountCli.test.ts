import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GitHttpServer } from '../support/gitHttpServer';
import { run } from '../support/nodeHarness';
import { commitTree, generatedTree, removeDir, tempDir } from '../support/repoFixtures';
import { mountsAt } from '../../src/mount/mountTable';

const MAIN = resolve(__dirname, '../../src/cli/main.js');

interface Running {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

function start(args: string[]): Running {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const running: Running = { child, stdout: '', stderr: '', exited: new Promise((r) => child.on('close', r)) };
  child.stdout!.on('data', (c) => (running.stdout += c));
  child.stderr!.on('data', (c) => (running.stderr += c));
  return running;
}

async function until(running: Running, pattern: RegExp, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(running.stdout)) {
    if (running.child.exitCode !== null || Date.now() > deadline) throw new Error(`no ${pattern} (exit ${running.child.exitCode}): ${running.stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('gitfs-csi mount', () => {
  let dir: string;
  let server: GitHttpServer;
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
    const mountpoint = join(dir, 'mnt');
    const cli = start(['mount', server.url('demo.git'), mountpoint, '--cache-dir', join(dir, 'cache'), '--ref', 'main']);
    await until(cli, /^ready /m);
    assert.deepEqual((await readdir(mountpoint)).slice(0, 3), ['README.md', 'assets', 'bin']);
    assert.equal(await readFile(join(mountpoint, 'package.json'), 'utf8'), '{"name":"fixture"}\n');
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 0);
    assert.deepEqual(await mountsAt(mountpoint), []);
    assert.match(cli.stderr, /unmounted .*: \d+ blobs/);
    const logLines = cli.stderr.split('\n').filter((l) => l.startsWith('{'));
    assert.ok(logLines.length > 0);
    for (const line of logLines) assert.equal(typeof JSON.parse(line).msg, 'string');
    assert.ok(logLines.some((l) => /"phase":"indexing"/.test(l)));
  });

  test('SIGINT unmounts too, even while preparation is still running', async () => {
    const mountpoint = join(dir, 'mnt-int');
    await server.withFetchDelay(2000, async () => {
      const cli = start(['mount', server.url('demo.git'), mountpoint, '--cache-dir', join(dir, 'cache-int')]);
      const deadline = Date.now() + 10_000;
      while ((await mountsAt(mountpoint)).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal((await mountsAt(mountpoint)).length, 1);
      cli.child.kill('SIGINT');
      assert.equal(await cli.exited, 0);
      assert.deepEqual(await mountsAt(mountpoint), []);
    });
  });

  test('bad arguments name the field and exit 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['mount'], /arguments: expected <repository> <mountpoint>/],
      [['mount', server.url('demo.git'), join(dir, 'x'), '--depth', 'deep'], /--depth: "deep" is not a non-negative integer/],
      [['mount', server.url('demo.git'), join(dir, 'x'), '--cache-max-bytes', '10X'], /--cache-max-bytes: "10X" is not a size/],
      [['mount', 'ftp://127.0.0.1/r', join(dir, 'x')], /repository: .*"ftp" transport/],
      [['mount', server.url('demo.git'), join(dir, 'x'), '--ref', 'a..b'], /ref: "a\.\.b" is not a valid/],
      [['frobnicate'], /unknown command "frobnicate"/],
    ];
    for (const [args, pattern] of cases) {
      const result = await run(process.execPath, [MAIN, ...args]);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, pattern);
    }
  });

  test('an unknown host fails clearly (in a network namespace of its own, so no query leaves this machine)', async () => {
    const result = await run('unshare', ['--net', process.execPath, MAIN, 'mount', 'https://no-such-host.invalid/r.git', join(dir, 'y'), '--cache-dir', join(dir, 'cache-y')]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /cannot resolve the host of https:\/\/no-such-host\.invalid\/r\.git/);
  });

  test('credentials in the repository URL never appear in output', async () => {
    const result = await run(process.execPath, [MAIN, 'mount', server.url('missing.git', 'someone:TopSecret123'), join(dir, 'z'), '--cache-dir', join(dir, 'cache-z')]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /was not found/);
    assert.doesNotMatch(result.stderr + result.stdout, /TopSecret123/);
  });
});
