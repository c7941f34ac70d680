import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CsiPlugin, outcome, publishRequest } from '../support/csiPlugin';
import { GitHttpServer } from '../support/gitHttpServer';
import { run } from '../support/nodeHarness';
import { commitTree, generatedTree, removeDir, tempDir } from '../support/repoFixtures';

const SECRET = 'Pr1vate-T0ken-value';

describe('credentials: none, wrong and right, per volume and ambient', () => {
  let dir: string;
  let server: GitHttpServer;
  let plugin: CsiPlugin;
  let ambient: CsiPlugin;
  let n = 0;
  const target = () => join(dir, 'targets', `t${++n}`);
  const repository = () => server.url('private.git');
  const publish = (on: CsiPlugin, secrets?: Record<string, string>, volumeId = `vol-${n}`) =>
    outcome(on.call('Node', 'NodePublishVolume', publishRequest({ volumeId, target: target(), context: { repository: repository() }, secrets })));

  before(async () => {
    dir = await tempDir('csi-cred');
    server = new GitHttpServer(join(dir, 'served'), { auth: { username: 'alice', password: SECRET } });
    await server.start();
    await commitTree(join(dir, 'served', 'private.git'), generatedTree(20));
    // A HOME without credentials, and one whose git configuration carries them (ambient).
    const bare = join(dir, 'home-bare');
    const home = join(dir, 'home-ambient');
    await mkdir(bare, { recursive: true });
    await mkdir(home, { recursive: true });
    await writeFile(join(home, '.gitconfig'), '[credential]\n\thelper = store\n');
    await writeFile(join(home, '.git-credentials'), `http://alice:${SECRET}@127.0.0.1:${server.port}\n`, { mode: 0o600 });
    plugin = await CsiPlugin.start(join(dir, 'plugin'), { env: { HOME: bare } });
    ambient = await CsiPlugin.start(join(dir, 'ambient'), { env: { HOME: home } });
  });
  after(async () => {
    await plugin.stop();
    await ambient.stop();
    await server.stop();
    await removeDir(dir);
  });

  test('per-volume secrets: none is UNAUTHENTICATED, wrong is PERMISSION_DENIED, right (password or token) serves the files', async () => {
    assert.equal((await publish(plugin)).code, 'UNAUTHENTICATED');
    const wrong = await publish(plugin, { username: 'alice', password: 'not-it' });
    assert.equal(wrong.code, 'PERMISSION_DENIED');
    assert.doesNotMatch(wrong.message, /not-it/);
    const t = join(dir, 'targets', `t${n + 1}`);
    assert.equal((await publish(plugin, { username: 'alice', password: SECRET })).code, 'OK');
    assert.equal(await readFile(join(t, 'package.json'), 'utf8'), '{"name":"fixture"}\n');
    assert.equal((await publish(plugin, { username: 'alice', token: SECRET })).code, 'OK');
  });

  test('a second volume without access is refused while the first, with access, has the commit cached', async () => {
    assert.equal((await publish(plugin, { username: 'alice', password: SECRET })).code, 'OK');
    assert.equal((await publish(plugin)).code, 'UNAUTHENTICATED');
    assert.equal((await publish(plugin, { username: 'mallory', password: SECRET })).code, 'PERMISSION_DENIED');
  });

  test("ambient credentials (the node plugin's own git configuration) serve volumes without secrets; a volume's own secret replaces them", async () => {
    assert.equal((await publish(ambient)).code, 'OK');
    assert.equal((await publish(ambient, { username: 'alice', password: 'wrong' })).code, 'PERMISSION_DENIED');
  });

  test('after a restart, republishing a private volume brings its credentials back to the fetches of the re-mounted tree', async () => {
    const t = join(dir, 'targets', 'restarted');
    const request = publishRequest({ volumeId: 'vol-private-restart', target: t, context: { repository: repository() }, secrets: { username: 'alice', password: SECRET } });
    await plugin.call('Node', 'NodePublishVolume', request);
    await plugin.restart('SIGKILL');
    await plugin.call('Node', 'NodePublishVolume', request);
    // A file no one has read yet must be fetched, with the volume's credentials.
    assert.equal(await readFile(join(t, 'names', 'with space.txt'), 'utf8'), 'spaces\n');
    await plugin.call('Node', 'NodeUnpublishVolume', { volume_id: 'vol-private-restart', target_path: t });
  });

  test('no secret reaches a log line, the state directory or the cache', async () => {
    assert.doesNotMatch(plugin.logs + ambient.logs, new RegExp(SECRET));
    for (const tree of [join(dir, 'plugin'), join(dir, 'ambient')]) {
      const found = await run('grep', ['-rl', '--exclude-dir=trees', SECRET, tree]);
      assert.equal(found.stdout, '', `secret found in ${found.stdout}`);
    }
  });
});
