import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { NodeStatus } from '../../src/status/nodeStatus';
import { CsiPlugin, outcome, publishRequest } from '../support/csiPlugin';
import { GitHttpServer } from '../support/gitHttpServer';
import { runCli } from '../support/mountCli';
import { commitTree, generatedTree, removeDir, tempDir } from '../support/repoFixtures';
import { freePort } from '../support/freePort';


describe('gitfs-csi status', () => {
  let dir: string;
  let server: GitHttpServer;
  let plugin: CsiPlugin;
  let commit: string;
  let metricsUrl: string;
  const status = (...args: string[]) => runCli(['status', '--state-dir', plugin.stateDir, ...args]);
  /** FUSE requests the plugin has answered so far. */
  const fuseRequests = async () => {
    const text = await (await fetch(metricsUrl)).text();
    return [...text.matchAll(/^gitfs_fuse_request_duration_seconds_count\{[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
  };

  before(async () => {
    dir = await tempDir('status');
    server = new GitHttpServer(join(dir, 'served'));
    await server.start();
    commit = await commitTree(join(dir, 'served', 'app.git'), generatedTree(40));
    const port = await freePort();
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    plugin = await CsiPlugin.start(join(dir, 'plugin'), { args: ['--metrics-address', `127.0.0.1:${port}`] });
  });
  after(async () => {
    await plugin.stop();
    await server.stop();
    await removeDir(dir);
  });

  test('asks the running plugin what it holds: tree mounts, volumes with their pods, the cache, the stores; reads no mount', async () => {
    const empty = await status();
    assert.equal(empty.code, 0, empty.stderr);
    assert.match(empty.stdout, /^gitfs-csi \d+\.\d+\.\d+, up \d+s\n\nTREE MOUNTS \(0\)\n\(none\)\n\nVOLUMES \(0\)\n\(none\)\n/);

    const pod = { 'csi.storage.k8s.io/pod.name': 'builder', 'csi.storage.k8s.io/pod.namespace': 'ci', 'csi.storage.k8s.io/pod.uid': 'uid-1' };
    const readOnly = join(dir, 'read-only');
    const writable = join(dir, 'writable');
    const context = { repository: server.url('app.git'), ...pod };
    assert.equal((await outcome(plugin.call('Node', 'NodePublishVolume', publishRequest({ volumeId: 'vol-ro', target: readOnly, context })))).code, 'OK');
    assert.equal((await outcome(plugin.call('Node', 'NodePublishVolume', publishRequest({ volumeId: 'vol-rw', target: writable, context, mode: 'SINGLE_NODE_WRITER' })))).code, 'OK');
    const readme = await readFile(join(readOnly, 'README.md'));

    const before = await fuseRequests();
    const answer = await status('--json');
    assert.equal(answer.code, 0, answer.stderr);
    assert.equal(await fuseRequests(), before, 'status sent no request to any mount');
    const held = JSON.parse(answer.stdout) as NodeStatus;
    assert.equal(held.trees.length, 1);
    const [tree] = held.trees;
    assert.equal(tree.commit, commit);
    assert.equal(tree.volumes, 2);
    assert.equal(tree.mounted, true);
    assert.ok(tree.entries! > 40);
    assert.ok(tree.cachedBytes! >= readme.length && tree.cachedBytes! <= tree.totalBytes!);
    assert.deepEqual(held.volumes.map((v) => [v.volumeId, v.mode, v.pod, v.state, v.commit]).sort(), [
      ['vol-ro', 'read-only', 'ci/builder', 'ready', commit],
      ['vol-rw', 'writable', 'ci/builder', 'ready', commit],
    ]);
    assert.ok(held.cache.blobs >= 1 && held.cache.bytes >= readme.length && held.cache.readMisses >= 1);
    assert.equal(held.stores.length, 1);
    assert.ok(held.stores[0].bytes > 0);

    const text = await status();
    assert.match(text.stdout, new RegExp(`TREE MOUNTS \\(1\\)\\nREPOSITORY +COMMIT +STATE +ENTRIES +VOLUMES +CACHED +AGE\\n${server.url('app.git').replace(/[.]/g, '\\.')} +${commit.slice(0, 12)} +complete +[\\d,]+ +2 +`));
    assert.match(text.stdout, /VOLUMES \(2\)\n/);
    assert.match(text.stdout, new RegExp(`${writable} +ci/builder +writable +`));
    assert.match(text.stdout, /CACHE {2}\S+ \S+ of 10 GiB, \d+ blobs, file reads answered from it: /);
  });

  test('without a plugin at the state directory it says so, and exits 1', async () => {
    const result = await runCli(['status', '--state-dir', join(dir, 'nothing-here')]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /no node plugin answers at .*nothing-here\/status\.sock \(ENOENT\); is it running, with this --state-dir\?/);
  });
});
