import { join } from 'node:path';
import { CsiPlugin, publishRequest } from '../test/support/csiPlugin';
import { GitHttpServer } from '../test/support/gitHttpServer';
import { LoopingReader, readerExpectations } from '../test/support/loopingReader';
import { commitTree, generatedTree, removeDir, tempDir } from '../test/support/repoFixtures';
import { Row } from './measure';

const QUIET_MS = 3_000;

/**
 * The stall a reader sees while the node plugin is replaced: a real `gitfs-csi node` with its
 * holder, a volume published over gRPC, a reader in another process taking one new file every
 * ~2 ms, and the plugin killed (or stopped) and started again at once with the same flags. Prints
 * rows as JSON: the longest read across the restart against the longest over as long a quiet spell.
 */
async function main(): Promise<void> {
  const dir = await tempDir('bench-restart');
  const server = new GitHttpServer(join(dir, 'served'));
  await server.start();
  const rows: Row[] = [];
  try {
    const bare = join(dir, 'served', 'app.git');
    const { expected, listFile } = await readerExpectations(dir, bare, await commitTree(bare, generatedTree(1500)));

    for (const [signal, measure] of [['SIGKILL', 'reader stall across kill -9 + restart of the node plugin'], ['SIGTERM', 'reader stall across SIGTERM + a successor']] as const) {
      const pluginDir = join(dir, `plugin-${signal}`);
      const plugin = await CsiPlugin.start(pluginDir, { args: ['--fuse-holder', 'spawn'] });
      const target = join(dir, `target-${signal}`);
      await plugin.call('Node', 'NodePublishVolume', publishRequest({ volumeId: `vol-${signal}`, target, context: { repository: server.url('app.git') } }));
      const quiet = LoopingReader.start(target, expected, listFile, join(dir, `quiet-${signal}`));
      await new Promise((r) => setTimeout(r, QUIET_MS));
      const baseline = await quiet.finish();
      const reader = LoopingReader.start(target, expected, listFile, join(dir, `stop-${signal}`));
      await new Promise((r) => setTimeout(r, 500));
      await plugin.stop(signal);
      await plugin.launch();
      await plugin.waitForLog(/volume taken over after restart/, 30_000);
      await new Promise((r) => setTimeout(r, QUIET_MS - 500));
      const across = await reader.finish();
      if (across.errors > 0 || baseline.errors > 0) throw new Error(`reads failed across ${signal}: ${across.samples.join(', ')}`);
      rows.push({ corpus: 'generated, 1,500 files', measure, ours: across.longest, baseline: baseline.longest, baselineName: 'longest read, no restart', unit: 'ms' });
      await plugin.call('Node', 'NodeUnpublishVolume', { volume_id: `vol-${signal}`, target_path: target });
      await plugin.stop();
      await plugin.killHolder();
    }
  } finally {
    await server.stop();
    await removeDir(dir);
  }
  process.stdout.write(JSON.stringify(rows));
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`restart stall bench failed: ${err.stack}\n`);
    process.exit(1);
  },
);
