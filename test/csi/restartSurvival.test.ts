import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readMountTable } from '../../src/mount/mountTable';
import { CsiPlugin, publishRequest } from '../support/csiPlugin';
import { GitHttpServer } from '../support/gitHttpServer';
import { run } from '../support/nodeHarness';
import { commitTree, generatedTree, removeDir, tempDir } from '../support/repoFixtures';

/**
 * A reader in a process of its own: reads file after file of the volume (each one new to the
 * kernel, so every read reaches the FUSE server), compares it with git archive's copy, and every
 * 200 files drops the kernel's caches so that lookups and reads keep coming. It reports every
 * error and the longest time one file took.
 */
const READER = `
const fs = require('node:fs');
const [volume, expected, listFile, stopFile] = process.argv.slice(1);
const files = fs.readFileSync(listFile, 'utf8').split('\\n').filter(Boolean);
let errors = 0, reads = 0, longest = 0, i = 0;
const samples = [];
while (!fs.existsSync(stopFile)) {
  const file = files[i++ % files.length];
  if (i % 200 === 0) fs.writeFileSync('/proc/sys/vm/drop_caches', '2');
  const started = Date.now();
  try {
    if (!fs.readFileSync(volume + '/' + file).equals(fs.readFileSync(expected + '/' + file))) { errors++; samples.push('differs: ' + file); }
  } catch (err) { errors++; samples.push(err.code + ': ' + file); }
  longest = Math.max(longest, Date.now() - started);
  reads++;
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
}
process.stdout.write(JSON.stringify({ errors, reads, longest, samples: samples.slice(0, 5) }));
`;

interface ReaderResult {
  errors: number;
  reads: number;
  longest: number;
  samples: string[];
}

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
    archive = join(dir, 'archive');
    await run('mkdir', ['-p', archive]);
    await run('sh', ['-c', `git --git-dir '${join(dir, 'served', 'app.git')}' archive ${commit} | tar -x -C '${archive}'`]);
    listFile = join(dir, 'files.txt');
    await writeFile(listFile, (await run('sh', ['-c', `cd '${archive}' && find . -type f | sort`])).stdout);
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
    const stopFile = join(dir, `stop-${n}`);
    const reader: ChildProcess = spawn(process.execPath, ['-e', READER, target, archive, listFile, stopFile], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    reader.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise((resolve) => reader.on('close', resolve));
    try {
      await new Promise((r) => setTimeout(r, 1000));
      await interrupt(plugin);
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      await writeFile(stopFile, '');
    }
    try {
      // A read that never returns (a request lost across the restart) fails the test instead of hanging it.
      const timedOut = new Promise((_, reject) => setTimeout(() => reject(new Error('the reader is stuck: a request was lost')), 30_000).unref());
      await Promise.race([exited, timedOut]);
      await plugin.call('Node', 'NodeUnpublishVolume', { volume_id: `vol-${n}`, target_path: target });
      await plugin.stop();
      assert.deepEqual((await readMountTable()).filter((m) => m.mountPoint.startsWith(pluginDir) || m.mountPoint === target), [], 'nothing stays mounted');
    } finally {
      await leaveNothing(plugin, pluginDir, target, reader);
    }
    return { result: JSON.parse(output) as ReaderResult, plugin };
  }

  /**
   * Whatever failed: no holder keeps a mount that nobody serves (a walk of the test directory would
   * wait on it for ever), no reader, no plugin, nothing mounted.
   */
  async function leaveNothing(plugin: CsiPlugin, pluginDir: string, target: string, reader: ChildProcess): Promise<void> {
    reader.kill('SIGKILL');
    await plugin.stop('SIGKILL').catch(() => undefined);
    await run('pkill', ['-f', `fuse-holder --socket ${join(plugin.stateDir, 'fuse-holder.sock')}`]);
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

  test('on a kernel without FUSE resend (negotiated as Linux 5.10), a graceful restart loses nothing', async () => {
    const { result, plugin } = await readAcross(['--fuse-kernel-profile', '5.10'], (p) => relaunch(p, 'SIGTERM'));
    assert.equal(result.errors, 0, result.samples.join('\n'));
    assert.match(plugin.logs, /"resend":false/);
    console.log(`# graceful, no resend: ${result.reads} reads, 0 errors, longest read ${result.longest} ms`);
  });
});
