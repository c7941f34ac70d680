import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CsiPlugin } from '../support/csiPlugin';
import { GitHttpServer } from '../support/gitHttpServer';
import { run } from '../support/nodeHarness';
import { commitTree, generatedTree, removeDir, tempDir } from '../support/repoFixtures';
import { readMountTable } from '../../src/mount/mountTable';

let dir: string;
let server: GitHttpServer;
let plugin: CsiPlugin;

before(async () => {
  dir = await tempDir('sanity');
  server = new GitHttpServer(join(dir, 'served'));
  await server.start();
  await commitTree(join(dir, 'served', 'sanity.git'), generatedTree(40));
  plugin = await CsiPlugin.start(join(dir, 'plugin'));
});

after(async () => {
  await plugin.stop();
  await server.stop();
  await removeDir(dir);
});

test('csi-sanity v5.5.0 passes against gitfs-csi node --controller with 0 failures', async () => {
  const parameters = join(dir, 'parameters.yaml');
  await writeFile(parameters, `repository: ${server.url('sanity.git')}\nref: main\n`);
  const result = await run('csi-sanity', [
    '--csi.endpoint', plugin.socket,
    '--csi.mountdir', join(dir, 'mnt'),
    '--csi.stagingdir', join(dir, 'stage'),
    '--csi.testvolumeparameters', parameters,
    '--ginkgo.no-color',
  ], { timeoutMs: 300_000 });
  const summary = /Ran (\d+) of (\d+) Specs[\s\S]*?(\d+) Passed \| (\d+) Failed \| (\d+) Pending \| (\d+) Skipped/.exec(result.stdout);
  assert.ok(summary, result.stdout.slice(-3000) + result.stderr.slice(-2000));
  const [, ran, , passed, failed] = summary.map(Number);
  assert.equal(failed, 0, result.stdout.slice(-5000));
  assert.equal(result.code, 0);
  // Every Node spec runs (writable volumes serve SINGLE_NODE_WRITER); the skipped ones need
  // capabilities gitfs-csi does not offer (snapshots, expansion, staging, listing).
  assert.ok(ran >= 31 && passed === ran, `ran ${ran}, passed ${passed}`);
  // csi-sanity leaves nothing mounted behind it.
  assert.deepEqual((await readMountTable()).filter((m) => m.mountPoint.startsWith(dir)), []);
});
