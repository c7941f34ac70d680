import assert from 'node:assert/strict';
import { cp } from 'node:fs/promises';
import { Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CsiPlugin, outcome, publishRequest } from '../support/csiPlugin';
import { GitHttpServer } from '../support/gitHttpServer';
import { NetworkSandbox } from '../support/networkSandbox';
import { run } from '../support/nodeHarness';
import { commitTree, generatedTree, removeDir, serveConfig, tempDir } from '../support/repoFixtures';
import { SshGitServer } from '../support/sshGitServer';

const METADATA = '169.254.169.254';
const PRIVATE = '10.1.2.3';
/** A documentation address, public as far as the policy knows, that exists only in the sandbox. */
const PUBLIC = '203.0.113.10';

describe('the remote policy of a node plugin, in a network namespace of its own', () => {
  let dir: string;
  let sandbox: NetworkSandbox;
  let server: GitHttpServer;
  let sshd: SshGitServer;
  let plugin: CsiPlugin;
  /** Connections each sandbox address received. */
  const connections = new Map<string, number>();
  let rebindOn: string | undefined;
  let n = 0;
  const target = () => join(dir, 'targets', `t${++n}`);
  const publish = (repository: string, t = target()) =>
    outcome(plugin.call('Node', 'NodePublishVolume', publishRequest({ volumeId: `policy-${n}`, target: t, context: { repository } })));
  /** Reads a file of a volume, which is mounted in the sandbox's mount namespace. */
  const readInSandbox = async (path: string) => (await run(sandbox.enter[0], [...sandbox.enter.slice(1), 'cat', path])).stdout;

  before(async () => {
    dir = await tempDir('csi-policy');
    const root = join(dir, 'served');
    await commitTree(join(root, 'repo.git'), generatedTree(10));
    await serveConfig(join(root, 'repo.git'));
    for (const copy of ['allowed', 'rebind']) await cp(join(root, 'repo.git'), join(root, copy, 'repo.git'), { recursive: true });
    sandbox = await NetworkSandbox.create(dir, [METADATA, PRIVATE, PUBLIC]);
    sandbox.setHosts({ 'git.public.test': PUBLIC, 'rebind.test': PUBLIC });
    sshd = new SshGitServer(join(dir, 'sshd'), { address: PUBLIC, host: 'rebind.test', enter: sandbox.enter });
    await sshd.start();
    server = new GitHttpServer(root, {
      redirect: (path) => {
        if (path.startsWith('/moved-to-metadata/')) return `http://${METADATA}/repo.git/info/refs?service=git-upload-pack`;
        if (path.startsWith('/moved/')) return `http://git.public.test/repo.git/info/refs?service=git-upload-pack`;
        return undefined;
      },
      // The DNS answer for rebind.test changes as soon as the first request for it arrives.
      onRequest: (path) => {
        if (rebindOn && path.startsWith('/rebind/')) sandbox.setHosts({ 'git.public.test': PUBLIC, 'rebind.test': rebindOn });
      },
    });
    await server.start();
    for (const address of ['127.0.0.1', METADATA, PRIVATE, PUBLIC]) {
      const listener: Server = await sandbox.listen(address, 80);
      listener.on('connection', () => connections.set(address, (connections.get(address) ?? 0) + 1));
      server.serveOn(listener);
    }
    plugin = await CsiPlugin.start(join(dir, 'plugin'), { enter: sandbox.enter, args: ['--allow-remote', '*', '--allow-remote', `${PRIVATE}/allowed`] });
  });
  after(async () => {
    await plugin?.stop();
    await server?.stop();
    await sshd?.stop();
    await sandbox?.close();
    await removeDir(dir);
  });

  test('a remote on loopback, on the metadata address or on a private address is refused before any connection', async () => {
    for (const [address, why] of [['127.0.0.1', /loopback/], [METADATA, /link-local/], [PRIVATE, /private/]] as const) {
      const result = await publish(`http://${address}/repo.git`);
      assert.equal(result.code, 'FAILED_PRECONDITION', result.message);
      assert.match(result.message, why);
      assert.match(result.message, new RegExp(`--allow-remote ${address.replace(/\./g, '\\.')}`));
      assert.equal(connections.get(address) ?? 0, 0, `nothing connected to ${address}`);
    }
  });

  test('a public remote passes under *, and a private one allowed by name passes', async () => {
    for (const repository of ['http://git.public.test/repo.git', `http://${PRIVATE}/allowed/repo.git`]) {
      const t = target();
      const result = await publish(repository, t);
      assert.equal(result.code, 'OK', `${repository}: ${result.message}`);
      assert.equal(await readInSandbox(join(t, 'package.json')), '{"name":"fixture"}\n');
      await plugin.call('Node', 'NodeUnpublishVolume', { volume_id: `policy-${n}`, target_path: t });
    }
    assert.ok((connections.get(PUBLIC) ?? 0) > 0);
  });

  test('a host name whose DNS answer turns to loopback after the probe began is refused, and loopback is never reached', async () => {
    rebindOn = '127.0.0.1';
    const result = await publish('http://rebind.test/rebind/repo.git');
    assert.equal(result.code, 'FAILED_PRECONDITION', result.message);
    assert.match(result.message, /rebind\.test \(127\.0\.0\.1\) is a loopback address/);
    assert.equal(connections.get('127.0.0.1') ?? 0, 0);
  });

  test('a redirect to the metadata address is refused; a redirect to an allowed remote is followed', async () => {
    const refused = await publish('http://git.public.test/moved-to-metadata/repo.git');
    assert.equal(refused.code, 'FAILED_PRECONDITION', refused.message);
    assert.match(refused.message, /169\.254\.169\.254 is a link-local address/);
    assert.equal(connections.get(METADATA) ?? 0, 0);
    const t = target();
    const followed = await publish('http://git.public.test/moved/repo.git', t);
    assert.equal(followed.code, 'OK', `${followed.message}\n${plugin.logs.split('\n').filter((l) => /stepped aside|redirect/.test(l)).join('\n')}`);
    assert.equal(await readInSandbox(join(t, 'package.json')), '{"name":"fixture"}\n');
    await plugin.call('Node', 'NodeUnpublishVolume', { volume_id: `policy-${n}`, target_path: t });
  });

  test('git itself, when our client steps aside, is held to the same addresses', async () => {
    // The first request fails, so git takes over the probe; the name has turned private by then.
    sandbox.setHosts({ 'git.public.test': PUBLIC, 'rebind.test': PUBLIC });
    rebindOn = PRIVATE;
    server.failNext = { count: 1, status: 500 };
    const before = connections.get(PRIVATE) ?? 0;
    const result = await publish('http://rebind.test/rebind/repo.git');
    assert.equal(result.code, 'FAILED_PRECONDITION', result.message);
    assert.match(result.message, /rebind\.test \(10\.1\.2\.3\) is a private address/);
    assert.equal(connections.get(PRIVATE) ?? 0, before);
    // And where the name stays public, git connects to the address checked (curl is given it).
    rebindOn = undefined;
    sandbox.setHosts({ 'git.public.test': PUBLIC, 'rebind.test': PUBLIC });
    server.failNext = { count: 1, status: 500 };
    const t = target();
    const passed = await publish('http://rebind.test/rebind/repo.git', t);
    assert.equal(passed.code, 'OK', passed.message);
    await plugin.call('Node', 'NodeUnpublishVolume', { volume_id: `policy-${n}`, target_path: t });
  });

  test('ssh connects to the address checked, the host key checked under the remote\'s name; a name turned private is refused', async () => {
    rebindOn = undefined;
    sandbox.setHosts({ 'git.public.test': PUBLIC, 'rebind.test': PUBLIC });
    const secrets = { 'ssh-privatekey': sshd.clientKey.privateKey, known_hosts: sshd.knownHosts };
    const repository = sshd.url(join(dir, 'served', 'repo.git'));
    const t = target();
    const passed = await outcome(plugin.call('Node', 'NodePublishVolume', publishRequest({ volumeId: `policy-${n}`, target: t, context: { repository }, secrets })));
    assert.equal(passed.code, 'OK', passed.message);
    assert.equal(await readInSandbox(join(t, 'README.md')), '# generated fixture\n');
    await plugin.call('Node', 'NodeUnpublishVolume', { volume_id: `policy-${n}`, target_path: t });
    sandbox.setHosts({ 'git.public.test': PUBLIC, 'rebind.test': PRIVATE });
    const t2 = target();
    const refused = await outcome(plugin.call('Node', 'NodePublishVolume', publishRequest({ volumeId: `policy-${n}`, target: t2, context: { repository }, secrets })));
    assert.equal(refused.code, 'FAILED_PRECONDITION', refused.message);
    assert.match(refused.message, /rebind\.test \(10\.1\.2\.3\) is a private address/);
  });
});
