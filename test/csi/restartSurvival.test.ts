import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readMountTable } from '../../src/mount/mountTable';
import { CsiPlugin, publishRequest } from '../support/csiPlugin';
import { GitHttpServer } from '../support/gitHttpServer';
import { LoopingReader, ReaderResult, readerExpectations } from '../support/loopingReader';
import { run } from '../support/nodeHarness';
import { commitTree, generatedTree, removeDir, tempDir } from '../support/repoFixtures';

describe('mounts outlive the node plugin', () => {
  let dir: string;
  let server: GitHttpServer;
  let archive: string;
  let listFile: string;
  let n = 0;

  before(async () => {
    dir = await tempDir('survival');
    server = new GitHttpServer(join(dir, 'served'));
    await server.start();
    const commit = await commitTree(join(dir, 'served', 'app.git'), generatedTree(1500));
    await commitTree(join(dir, 'served', 'other.git'), generatedTree(20, 7));
    ({ expected: archive, listFile } = await readerExpectations(dir, join(dir, 'served', 'app.git'), commit));
  });
  after(async () => {
    await server.stop();
    await removeDir(dir);
  });

  /** Publishes a volume, starts a reader on it, runs `interrupt` while it reads, and returns what the reader saw. */
  async function readAcross(args: string[], interrupt: (plugin: CsiPlugin) => Promise<void>): Promise<{ result: ReaderResult; plugin: CsiPlugin }> {
    const pluginDir = join(dir, `plugin-${++n}`);
    const plugin = await CsiPlugin.start(pluginDir, { args: ['--fuse-holder', 'spawn', ...args] });
    const target = join(dir, 'targets', `t${n}`);
    await plugin.call('Node', 'NodePublishVolume', publishRequest({ volumeId: `vol-${n}`, target, context: { repository: server.url('app.git') } }));
    const reader = LoopingReader.start(target, archive, listFile, join(dir, `stop-${n}`));
    let result: ReaderResult;
    try {
      try {
        await new Promise((r) => setTimeout(r, 1000));
        await interrupt(plugin);
        await new Promise((r) => setTimeout(r, 1500));
      } finally {
        // A read that never returns (a request lost across the restart) fails the test instead of hanging it.
        result = await reader.finish();
      }
      await plugin.call('Node', 'NodeUnpublishVolume', { volume_id: `vol-${n}`, target_path: target });
      await plugin.stop();
      assert.deepEqual((await readMountTable()).filter((m) => m.mountPoint.startsWith(pluginDir) || m.mountPoint === target), [], 'nothing stays mounted');
    } finally {
      await leaveNothing(plugin, pluginDir, target, reader);
    }
    return { result, plugin };
  }

  /**
   * Whatever failed: no holder keeps a mount that nobody serves (a walk of the test directory would
   * wait on it for ever), no reader, no plugin, nothing mounted.
   */
  async function leaveNothing(plugin: CsiPlugin, pluginDir: string, target: string, reader?: LoopingReader): Promise<void> {
    reader?.kill();
    await plugin.stop('SIGKILL').catch(() => undefined);
    await plugin.killHolder();
    for (const mount of (await readMountTable()).filter((m) => m.mountPoint.startsWith(pluginDir) || m.mountPoint === target)) {
      await run('umount', ['-l', mount.mountPoint]);
    }
  }

  const relaunch = async (plugin: CsiPlugin, signal: NodeJS.Signals) => {
    await plugin.stop(signal);
    await new Promise((r) => setTimeout(r, 300)); // no server at all for a while: requests wait in the kernel
    await plugin.launch();
    await plugin.waitForLog(/volume taken over after restart/, 10_000);
  };

  test('kill -9 of the node plugin, then the same command again: a reader sees no error', async () => {
    const { result } = await readAcross([], (plugin) => relaunch(plugin, 'SIGKILL'));
    assert.equal(result.errors, 0, result.samples.join('\n'));
    assert.ok(result.reads > 100, `${result.reads} reads`);
    console.log(`# kill -9: ${result.reads} reads, 0 errors, longest read ${result.longest} ms`);
  });

  test('SIGTERM and a successor: a reader sees no error', async () => {
    const { result } = await readAcross([], (plugin) => relaunch(plugin, 'SIGTERM'));
    assert.equal(result.errors, 0, result.samples.join('\n'));
    console.log(`# graceful: ${result.reads} reads, 0 errors, longest read ${result.longest} ms`);
  });

  test('a stopping plugin leaves the holder only the mounts in use: an idle one (in its grace period) is unmounted', async () => {
    const pluginDir = join(dir, `plugin-${++n}`);
    const plugin = await CsiPlugin.start(pluginDir, { args: ['--fuse-holder', 'spawn', '--tree-grace-ms', '600000'] });
    const [used, idle] = [join(dir, 'targets', `used-${n}`), join(dir, 'targets', `idle-${n}`)];
    try {
      await plugin.call('Node', 'NodePublishVolume', publishRequest({ volumeId: `used-${n}`, target: used, context: { repository: server.url('app.git') } }));
      await plugin.call('Node', 'NodePublishVolume', publishRequest({ volumeId: `idle-${n}`, target: idle, context: { repository: server.url('other.git') } }));
      await plugin.call('Node', 'NodeUnpublishVolume', { volume_id: `idle-${n}`, target_path: idle });
      const trees = async () => (await readMountTable()).filter((m) => m.mountPoint.startsWith(join(plugin.stateDir, 'trees')) && m.fsType === 'fuse.gitfs').map((m) => m.mountPoint);
      assert.equal((await trees()).length, 2, 'the idle tree stays mounted for its grace period');
      await plugin.stop('SIGTERM');
      const left = await trees();
      assert.equal(left.length, 1, left.join('\n'));
      assert.match(left[0], /app/);
      await plugin.launch();
      await plugin.waitForLog(/volume taken over after restart/, 10_000);
      await plugin.call('Node', 'NodeUnpublishVolume', { volume_id: `used-${n}`, target_path: used });
      await plugin.stop();
    } finally {
      await leaveNothing(plugin, pluginDir, used);
    }
  });

  test('a writable volume keeps its overlay and its writes across kill -9: a shell inside it writes on', async () => {
    const pluginDir = join(dir, `plugin-${++n}`);
    const plugin = await CsiPlugin.start(pluginDir, { args: ['--fuse-holder', 'spawn'] });
    const target = join(dir, 'targets', `writable-${n}`);
    const stop = join(dir, `stop-${n}`);
    try {
      const request = publishRequest({ volumeId: `rw-${n}`, target, mode: 'SINGLE_NODE_WRITER', context: { repository: server.url('app.git'), writeLimit: '32Mi' } });
      await plugin.call('Node', 'NodePublishVolume', request);
      const overlay = async () => (await readMountTable()).filter((m) => m.mountPoint === target).map((m) => `${m.fsType} ${m.device}`);
      const before = await overlay();
      assert.match(before.join(), /^overlay /);
      // A process whose working directory is in the volume, as a container's would be, across the restart.
      const inside = run('sh', ['-c', `cd '${target}' && echo before > written.txt && while [ ! -e '${stop}' ]; do sleep 0.05; done; echo after >> written.txt && cat written.txt package.json`]);
      await new Promise((r) => setTimeout(r, 300));
      const gitStatus = async () => (await run('git', ['-C', target, 'status', '--porcelain'])).stdout;
      assert.equal(await gitStatus(), '?? written.txt\n');
      await relaunch(plugin, 'SIGKILL');
      assert.deepEqual(await overlay(), before, 'the same overlay, not a new one');
      // The successor answers for the .git nodes the kernel looked up from its predecessor.
      assert.equal(await gitStatus(), '?? written.txt\n');
      assert.equal((await run('git', ['-C', target, 'log', '-1', '--format=%s'])).stdout, 'fixture\n');
      await run('touch', [stop]);
      const { code, stdout, stderr } = await inside;
      assert.equal(code, 0, stderr);
      assert.equal(stdout, 'before\nafter\n{"name":"fixture"}\n');
      await plugin.call('Node', 'NodePublishVolume', request); // kubelet's retry after a restart: the same volume, kept
      assert.deepEqual(await overlay(), before);
      await plugin.call('Node', 'NodeUnpublishVolume', { volume_id: `rw-${n}`, target_path: target });
      await plugin.stop();
      assert.deepEqual((await readMountTable()).filter((m) => m.mountPoint.startsWith(pluginDir) || m.mountPoint === target), [], 'nothing stays mounted');
    } finally {
      await run('touch', [stop]);
      await leaveNothing(plugin, pluginDir, target);
    }
  });

  test('on a kernel without FUSE resend (negotiated as Linux 5.10), a graceful restart loses nothing', async () => {
    const { result, plugin } = await readAcross(['--fuse-kernel-profile', '5.10'], (p) => relaunch(p, 'SIGTERM'));
    assert.equal(result.errors, 0, result.samples.join('\n'));
    assert.match(plugin.logs, /"resend":false/);
    console.log(`# graceful, no resend: ${result.reads} reads, 0 errors, longest read ${result.longest} ms`);
  });
});
