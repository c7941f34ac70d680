import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CsiPlugin, outcome, publishRequest } from '../support/csiPlugin';
import { GitHttpServer } from '../support/gitHttpServer';
import { run } from '../support/nodeHarness';
import { commitTree, generatedTree, git, removeDir, tempDir } from '../support/repoFixtures';
import { readMountTable } from '../../src/mount/mountTable';

const SECRET = 'S3cret-Pa55word';

describe('CSI node service over gRPC', () => {
  let dir: string;
  let server: GitHttpServer;
  let plugin: CsiPlugin;
  let commit: string;
  let n = 0;
  const target = () => join(dir, 'targets', `t${++n}`);
  const volume = () => `vol-${n + 1}`;
  const app = () => ({ repository: server.url('app.git') });
  const publish = (fields: Parameters<typeof publishRequest>[0]) => outcome(plugin.call('Node', 'NodePublishVolume', publishRequest(fields)));

  before(async () => {
    dir = await tempDir('csi-node');
    server = new GitHttpServer(join(dir, 'served'));
    await server.start();
    commit = await commitTree(join(dir, 'served', 'app.git'), generatedTree(60));
    await git(['init', '-q', '--bare', join(dir, 'served', 'empty.git')]);
    plugin = await CsiPlugin.start(join(dir, 'plugin'), { args: ['--publish-wait-ms', '1500'] });
  });
  after(async () => {
    await plugin.stop();
    await server.stop();
    assert.doesNotMatch(plugin.logs, new RegExp(SECRET));
    await removeDir(dir);
  });

  test('arguments are checked before any volume is looked up; each error names its field and hides secrets', async () => {
    const t = join(dir, 'targets', 'invalid');
    const cases: Array<[ReturnType<typeof publishRequest>, RegExp]> = [
      [publishRequest({ volumeId: '', target: t, context: app() }), /^volume_id: is required/],
      [publishRequest({ volumeId: 'v', target: '', context: app() }), /^target_path: is required/],
      [{ ...publishRequest({ volumeId: 'v', target: t, context: app() }), volume_capability: null }, /^volume_capability: is required/],
      [publishRequest({ volumeId: 'v', target: t, context: app(), block: true }), /access type "block" is not supported/],
      [publishRequest({ volumeId: 'v', target: t, context: app(), mode: 'MULTI_NODE_MULTI_WRITER' }), /^volume_capability\.access_mode: MULTI_NODE_MULTI_WRITER without readonly is not supported: a volume's writes stay on the node/],
      [publishRequest({ volumeId: 'v', target: t, context: { ...app(), writeLimit: 'lots' }, mode: 'SINGLE_NODE_WRITER' }), /^volume_context\["writeLimit"\]: "lots" is not a size/],
      [publishRequest({ volumeId: 'v', target: t, context: { ...app(), writeLimit: '11Gi' }, mode: 'SINGLE_NODE_WRITER' }), /^volume_context\["writeLimit"\]: 11 GiB is over this node's maximum of 10 GiB/],
      [publishRequest({ volumeId: 'v', target: t, context: { ...app(), writeLimit: '1Mi' }, mode: 'SINGLE_NODE_WRITER' }), /^volume_context\["writeLimit"\]: 1\.0 MiB is under the smallest writable layer/],
      [publishRequest({ volumeId: 'v', target: t, context: {} }), /^volume_context\["repository"\]: is required/],
      [publishRequest({ volumeId: 'v', target: t, context: { ...app(), colour: 'red' } }), /^volume_context\["colour"\]: unknown key/],
      [publishRequest({ volumeId: 'v', target: t, context: { ...app(), depth: 'deep' } }), /^volume_context\["depth"\]: "deep" is not a non-negative integer/],
      [publishRequest({ volumeId: 'v', target: t, context: { ...app(), readiness: 'soon' } }), /^volume_context\["readiness"\]: "soon" is not "wait" or "gate"/],
      [publishRequest({ volumeId: 'v', target: t, context: { ...app(), git: 'no' } }), /^volume_context\["git"\]: "no" is not "true" or "false"/],
      [publishRequest({ volumeId: 'v', target: t, context: { ...app(), commit: 'abc123' } }), /^volume_context\["commit"\]: "abc123" is not a full commit id/],
      [publishRequest({ volumeId: 'v', target: t, context: { ...app(), ref: 'a..b' } }), /^volume_context\["ref"\]: "a\.\.b" is not a valid/],
      [publishRequest({ volumeId: 'v', target: t, context: { repository: 'ftp://127.0.0.1/r.git' } }), /^volume_context\["repository"\]: .*"ftp" transport/],
      [publishRequest({ volumeId: 'v', target: t, context: { repository: server.url('app.git', `bob:${SECRET}`) } }), /^volume_context\["repository"\]: .*carries credentials in the URL/],
      [publishRequest({ volumeId: 'v', target: t, context: app(), secrets: { colour: SECRET } }), /^secrets\["colour"\]: unknown key/],
      [publishRequest({ volumeId: 'v', target: t, context: app(), secrets: { password: SECRET } }), /^secrets\["username"\]: is required with "password"/],
    ];
    for (const [request, pattern] of cases) {
      const result = await outcome(plugin.call('Node', 'NodePublishVolume', request));
      assert.equal(result.code, 'INVALID_ARGUMENT', `${pattern}: ${result.message}`);
      assert.match(result.message, pattern);
      assert.doesNotMatch(result.message, new RegExp(SECRET));
    }
    assert.equal((await outcome(plugin.call('Node', 'NodeUnpublishVolume', { volume_id: '', target_path: t }))).code, 'INVALID_ARGUMENT');
    assert.equal((await outcome(plugin.call('Node', 'NodeUnpublishVolume', { volume_id: 'v', target_path: '' }))).code, 'INVALID_ARGUMENT');
    assert.equal((await outcome(plugin.call('Node', 'NodeGetVolumeStats', { volume_id: 'v', volume_path: '' }))).code, 'INVALID_ARGUMENT');
    assert.equal((await outcome(plugin.call('Node', 'NodeGetVolumeStats', { volume_id: 'no-such-volume', volume_path: t }))).code, 'NOT_FOUND');
    // Nothing was mounted or created for any of them.
    await assert.rejects(stat(t), { code: 'ENOENT' });
  });

  test('access probe failures map to CSI codes', async () => {
    const stopped = new GitHttpServer(join(dir, 'served'));
    await stopped.start();
    const refusedUrl = stopped.url('app.git');
    await stopped.stop();
    const cases: Array<[Record<string, string>, string, RegExp]> = [
      [{ repository: server.url('missing.git') }, 'NOT_FOUND', /was not found/],
      [{ ...app(), ref: 'no-such-branch' }, 'NOT_FOUND', /ref "no-such-branch" was not found/],
      [{ repository: server.url('empty.git') }, 'FAILED_PRECONDITION', /is empty/],
      [{ ...app(), ref: 'main', commit: 'f'.repeat(40) }, 'FAILED_PRECONDITION', /not the required commit/],
      [{ repository: refusedUrl }, 'UNAVAILABLE', /127\.0\.0\.1/],
    ];
    for (const [context, code, pattern] of cases) {
      const result = await publish({ volumeId: volume(), target: target(), context });
      assert.equal(result.code, code, `${JSON.stringify(context)}: ${result.message}`);
      assert.match(result.message, pattern);
    }
  });

  test('a published volume is the whole tree at once; repeats are idempotent, conflicts are refused, unpublish cleans up', async () => {
    const t = target();
    const volumeId = 'vol-lifecycle';
    const context = { ...app(), ref: 'main', commit, 'csi.storage.k8s.io/pod.name': 'web-0', 'csi.storage.k8s.io/pod.namespace': 'team' };
    assert.deepEqual(await publish({ volumeId, target: t, context }), { code: 'OK', message: '' });
    // Every preparation step is logged with the volume, the pod, the repository, the phase and its duration.
    await plugin.waitForLog(new RegExp(`"volumeId":"${volumeId}".*"phase":"indexing"`));
    const steps = plugin.logs.split('\n').filter((l) => l.includes('"msg":"preparation ')).map((l) => JSON.parse(l));
    const ours = steps.filter((l) => l.volumeId === volumeId);
    assert.deepEqual(ours.map((l) => l.phase).slice(0, 2), ['fetching', 'indexing']);
    for (const line of ours) {
      assert.equal(line.pod, 'team/web-0');
      assert.equal(line.repository, server.url('app.git'));
      assert.equal(typeof line.ms, 'number');
    }
    // readiness: wait — the first look already sees everything.
    assert.ok((await readdir(t)).includes('package.json'));
    assert.equal(await readFile(join(t, 'package.json'), 'utf8'), '{"name":"fixture"}\n');
    assert.equal((await publish({ volumeId, target: t, context })).code, 'OK');
    assert.equal((await publish({ volumeId, target: t, context: { ...context, depth: '2' } })).code, 'ALREADY_EXISTS');
    assert.equal((await publish({ volumeId: 'someone-else', target: t, context })).code, 'ALREADY_EXISTS');
    assert.equal((await publish({ volumeId, target: t, context, mode: 'SINGLE_NODE_WRITER', readonly: true })).code, 'ALREADY_EXISTS');

    const stats = await plugin.call('Node', 'NodeGetVolumeStats', { volume_id: volumeId, volume_path: t });
    const entries = (await git(['--git-dir', join(dir, 'served', 'app.git'), 'ls-tree', '-r', '-t', commit])).trim().split('\n').length + 1;
    const inodes = stats.usage.find((u: { unit: string }) => u.unit === 'INODES');
    const bytes = stats.usage.find((u: { unit: string }) => u.unit === 'BYTES');
    assert.equal(inodes.total, entries);
    assert.ok(bytes.used >= '{"name":"fixture"}\n'.length && bytes.used < bytes.total, JSON.stringify(bytes));
    assert.equal(stats.volume_condition.abnormal, false);
    assert.equal((await outcome(plugin.call('Node', 'NodeGetVolumeStats', { volume_id: volumeId, volume_path: `${t}-elsewhere` }))).code, 'NOT_FOUND');

    await plugin.call('Node', 'NodeUnpublishVolume', { volume_id: volumeId, target_path: t });
    await assert.rejects(stat(t), { code: 'ENOENT' });
    await plugin.call('Node', 'NodeUnpublishVolume', { volume_id: volumeId, target_path: t });
    assert.equal((await outcome(plugin.call('Node', 'NodeGetVolumeStats', { volume_id: volumeId, volume_path: t }))).code, 'NOT_FOUND');
    assert.deepEqual((await readMountTable()).filter((m) => m.mountPoint.startsWith(join(dir, 'targets'))), []);
  });

  test('a slow preparation survives a cancelled call, answers ABORTED with its phase, keeps going, and the retry attaches to it', async () => {
    await commitTree(join(dir, 'served', 'slow.git'), generatedTree(30, 7));
    server.resetCounters();
    await server.withFetchDelay(4000, async () => {
      const t = target();
      const request = { volumeId: 'vol-slow', target: t, context: { repository: server.url('slow.git') } };
      // Kubelet gives up on a call (its deadline passes): the preparation behind it carries on.
      const cancelled = await outcome(plugin.call('Node', 'NodePublishVolume', publishRequest(request), 200));
      assert.equal(cancelled.code, 'DEADLINE_EXCEEDED');
      // Kubelet retries with backoff until the preparation it started is ready.
      const answers = [];
      for (let i = 0; i < 40 && answers.at(-1)?.code !== 'OK'; i++) {
        answers.push(await publish(request));
        if (answers.at(-1)?.code === 'OK') break;
        await assert.rejects(stat(join(t, 'package.json')));
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.equal(answers.at(-1)?.code, 'OK', JSON.stringify(answers));
      assert.ok(answers.some((a) => a.code === 'ABORTED' && /is still fetching for \d/.test(a.message)), JSON.stringify(answers));
      assert.ok(answers.every((a) => a.code === 'OK' || a.code === 'ABORTED'), JSON.stringify(answers));
      assert.equal(server.counters.fetches, 1, 'one preparation, one fetch');
      assert.ok((await readdir(t)).includes('README.md'));
    });
  });

  test('a concurrent call for a target in flight answers ABORTED', async () => {
    await commitTree(join(dir, 'served', 'busy.git'), generatedTree(10, 9));
    await server.withFetchDelay(1000, async () => {
      const request = { volumeId: 'vol-busy', target: target(), context: { repository: server.url('busy.git') } };
      const [a, b] = await Promise.all([publish(request), new Promise((r) => setTimeout(r, 300)).then(() => publish(request))]);
      assert.equal(a.code, 'OK', a.message);
      assert.equal(b.code, 'ABORTED');
      assert.match(b.message, /already in progress/);
    });
  });

  test('readiness: gate publishes at once; a listing inside the mount waits at the gate until the tree is ready', async () => {
    await commitTree(join(dir, 'served', 'gated.git'), generatedTree(20, 11));
    await server.withFetchDelay(1500, async () => {
      const t = target();
      const request = { volumeId: 'vol-gated', target: t, context: { repository: server.url('gated.git'), readiness: 'gate' } };
      assert.equal((await publish(request)).code, 'OK');
      const atPublish = await plugin.call('Node', 'NodeGetVolumeStats', { volume_id: 'vol-gated', volume_path: t });
      assert.equal(atPublish.usage[1].total, 0, 'the tree was not ready when publish answered');
      const listing = await run('ls', [t]);
      assert.equal(listing.code, 0, listing.stderr);
      assert.match(listing.stdout, /README\.md/);
    });
  });

  test('a failing preparation returns its own error, shows as an abnormal volume condition, and the next publish retries it', async () => {
    await commitTree(join(dir, 'served', 'failing.git'), generatedTree(10, 13));
    server.options.rejectFetchesWith = 403;
    const waited = await publish({ volumeId: 'vol-fail-wait', target: target(), context: { repository: server.url('failing.git') } });
    assert.equal(waited.code, 'UNAUTHENTICATED', waited.message);
    assert.match(waited.message, /preparation failed while fetching/);

    const t = target();
    const request = { volumeId: 'vol-fail-gate', target: t, context: { repository: server.url('failing.git'), readiness: 'gate' } };
    assert.equal((await publish(request)).code, 'OK');
    let stats;
    for (let i = 0; i < 50; i++) {
      stats = await plugin.call('Node', 'NodeGetVolumeStats', { volume_id: 'vol-fail-gate', volume_path: t });
      if (stats.volume_condition.abnormal) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(stats.volume_condition.abnormal, true);
    assert.match(stats.volume_condition.message, /preparation failed while fetching/);
    assert.equal((await run('ls', [t])).code, 2, 'file operations fail with EIO');

    server.options.rejectFetchesWith = undefined;
    assert.equal((await publish({ ...request, context: { ...request.context, readiness: 'gate' } })).code, 'OK');
    assert.match((await run('ls', [t])).stdout, /README\.md/);
    stats = await plugin.call('Node', 'NodeGetVolumeStats', { volume_id: 'vol-fail-gate', volume_path: t });
    assert.equal(stats.volume_condition.abnormal, false, stats.volume_condition.message);
  });

  test('after a crash and restart, recorded volumes are re-mounted, report abnormal until republished, and stay idempotent', async () => {
    const t = target();
    const u = target();
    const request = { volumeId: 'vol-restart', target: t, context: app() };
    assert.equal((await publish(request)).code, 'OK');
    assert.equal((await publish({ volumeId: 'vol-restart-2', target: u, context: app() })).code, 'OK');
    await plugin.stop('SIGKILL');
    await assert.rejects(readdir(t), { code: 'ENOTCONN' });
    await plugin.launch();
    let listed: string[] = [];
    for (let i = 0; i < 100 && !listed.includes('README.md'); i++) {
      listed = await readdir(t).catch(() => []);
      if (!listed.includes('README.md')) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(listed.includes('README.md'), `the target is served again: ${plugin.logs.split('\n').filter((l) => /restart|recover|re-mount/.test(l)).join('\n')}`);
    const recovered = await plugin.call('Node', 'NodeGetVolumeStats', { volume_id: 'vol-restart', volume_path: t });
    assert.equal(recovered.volume_condition.abnormal, true);
    assert.match(recovered.volume_condition.message, /node plugin restarted/);

    assert.equal((await publish({ ...request, context: { ...request.context, depth: '3' } })).code, 'ALREADY_EXISTS');
    assert.equal((await publish(request)).code, 'OK');
    const republished = await plugin.call('Node', 'NodeGetVolumeStats', { volume_id: 'vol-restart', volume_path: t });
    assert.equal(republished.volume_condition.abnormal, false, republished.volume_condition.message);

    await plugin.call('Node', 'NodeUnpublishVolume', { volume_id: 'vol-restart', target_path: t });
    await plugin.call('Node', 'NodeUnpublishVolume', { volume_id: 'vol-restart-2', target_path: u });
    await assert.rejects(stat(u), { code: 'ENOENT' });
    assert.deepEqual((await readMountTable()).filter((m) => m.mountPoint === t || m.mountPoint === u), []);
  });
});
