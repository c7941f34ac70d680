import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CsiPlugin, publishRequest } from '../support/csiPlugin';
import { GitHttpServer } from '../support/gitHttpServer';
import { commitTree, generatedTree, removeDir, tempDir } from '../support/repoFixtures';
import { readMountTable } from '../../src/mount/mountTable';

const REPOSITORIES = 10;
const VOLUMES = 100;

let dir: string;
let server: GitHttpServer;
let plugin: CsiPlugin;

before(async () => {
  dir = await tempDir('csi-many');
  server = new GitHttpServer(join(dir, 'served'));
  await server.start();
  for (let r = 0; r < REPOSITORIES; r++) await commitTree(join(dir, 'served', `repo${r}.git`), generatedTree(15, r + 1));
  plugin = await CsiPlugin.start(join(dir, 'plugin'));
});

after(async () => {
  await plugin.stop();
  await server.stop();
  await removeDir(dir);
});

const openFileDescriptors = async () => (await readdir(`/proc/${plugin.pid}/fd`)).length;

/** 100 volumes of 10 repositories published at once, checked, then all unpublished; a failure carries the plugin's report. */
function round(tag: string): Promise<void> {
  return plugin.explained(publishAll(tag));
}

async function publishAll(tag: string): Promise<void> {
  const volumes = Array.from({ length: VOLUMES }, (_, i) => ({ volumeId: `${tag}-${i}`, target: join(dir, 'targets', `${tag}-${i}`), repo: i % REPOSITORIES }));
  await Promise.all(volumes.map((v) => plugin.call('Node', 'NodePublishVolume', publishRequest({ volumeId: v.volumeId, target: v.target, context: { repository: server.url(`repo${v.repo}.git`) } }))));
  for (const v of volumes) assert.equal(await readFile(join(v.target, 'package.json'), 'utf8'), '{"name":"fixture"}\n', v.volumeId);
  await Promise.all(volumes.map((v) => plugin.call('Node', 'NodeUnpublishVolume', { volume_id: v.volumeId, target_path: v.target })));
  assert.deepEqual((await readMountTable()).filter((m) => m.mountPoint.startsWith(dir)), [], 'no mount is left behind');
  assert.deepEqual(await readdir(join(dir, 'targets')), []);
}

test('100 concurrent publishes of 10 repositories are all ready and leave no mounts or file descriptors behind', async () => {
  await round('first');
  // The second round starts from warm stores; anything it leaks per volume shows as growth.
  const before = await openFileDescriptors();
  await round('second');
  const afterRound = await openFileDescriptors();
  assert.ok(afterRound <= before, `file descriptors grew from ${before} to ${afterRound}`);
});
