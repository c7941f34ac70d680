import assert from 'node:assert/strict';
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { CsiPlugin, Message } from '../support/csiPlugin';
import { loadProto } from '../../src/csi/csiProto';
import { MAIN } from '../support/mountCli';
import { run } from '../support/nodeHarness';
import { removeDir, tempDir } from '../support/repoFixtures';

let dir: string;

before(async () => {
  dir = await tempDir('node-cli');
});
after(async () => {
  await removeDir(dir);
});

test('gitfs-csi node and controller refuse bad flags naming them, with exit code 2', async () => {
  const dirs = ['--state-dir', join(dir, 'state'), '--cache-dir', join(dir, 'cache')];
  const cases: Array<[string[], RegExp]> = [
    [['node', ...dirs, '--endpoint', 'tcp://127.0.0.1:9000'], /--endpoint: "tcp:\/\/127\.0\.0\.1:9000" is not a unix socket/],
    [['node', ...dirs, '--publish-wait-ms', 'soon'], /--publish-wait-ms: "soon" is not a positive integer/],
    [['node', ...dirs, '--cache-max-bytes', 'lots'], /--cache-max-bytes: "lots" is not a size/],
    [['node', ...dirs, '--bogus'], /^gitfs-csi node: unknown option --bogus\n\nusage: gitfs-csi node \[options\]/],
    [['node', ...dirs, '--log-level', 'bogus'], /--log-level: "bogus" is not a log level; expected one of trace, debug, info, warn, error, fatal, silent/],
    [['node', ...dirs, '--metrics-address', '9808'], /--metrics-address: "9808" is not an address to listen on/],
    [['node', ...dirs, '--allow-remote', 'https://github.com/acme'], /--allow-remote: "https:\/\/github\.com\/acme" is not a remote pattern; expected a host name or address/],
    [['node', ...dirs, '--refuse-cidr', '10.96.0.0'], /--refuse-cidr: "10\.96\.0\.0" is not a CIDR range/],
    [['node', ...dirs, '--max-tree-entries', '0'], /--max-tree-entries: "0" is not a positive integer/],
    [['node', ...dirs, '--max-blob-bytes', 'big'], /--max-blob-bytes: "big" is not a size/],
    [['controller', '--endpoint', 'relative.sock'], /--endpoint: "relative\.sock" is not a unix socket/],
  ];
  for (const [args, pattern] of cases) {
    const result = await run(process.execPath, [MAIN, ...args]);
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, pattern);
  }
});

test('--version and version print the version from package.json', async () => {
  for (const flag of ['--version', 'version']) {
    const result = await run(process.execPath, [MAIN, flag]);
    assert.equal(result.code, 0);
    assert.equal(result.stdout, `gitfs-csi ${JSON.parse(await readFile(join(__dirname, '../../../package.json'), 'utf8')).version}\n`);
  }
});

test('SIGTERM stops the node plugin cleanly and removes its socket', async () => {
  const plugin = await CsiPlugin.start(join(dir, 'plugin'));
  const info = await plugin.call('Identity', 'GetPluginInfo', {});
  assert.equal(info.name, 'gitfs.csi.dev');
  assert.equal(info.vendor_version, require('../../../package.json').version);
  await plugin.stop('SIGTERM');
  assert.equal(await plugin.exited, 0);
  await assert.rejects(stat(plugin.socket), { code: 'ENOENT' });
  assert.match(plugin.logs, /"msg":"node plugin stopping/); // the process has exited: its stderr is all here
});

test('gitfs-csi controller serves Identity and Controller only', async () => {
  const controller = await CsiPlugin.start(join(dir, 'controller'), { command: 'controller' });
  try {
    const capabilities = (await controller.call('Identity', 'GetPluginCapabilities', {})).capabilities;
    assert.equal(capabilities[0].service.type, 'CONTROLLER_SERVICE');
    const created = await controller.call('Controller', 'CreateVolume', {
      name: 'pvc-1', parameters: { repository: 'https://example.com/r.git' },
      volume_capabilities: [{ mount: { fs_type: '', mount_flags: [] }, access_mode: { mode: 'MULTI_NODE_READER_ONLY' } }],
    });
    assert.match(created.volume.volume_id, /^gitfs-/);
    await assert.rejects(controller.call('Node', 'NodeGetInfo', {}), { code: 12 /* UNIMPLEMENTED */ });
  } finally {
    await controller.stop();
  }
});

test('Probe answers not ready while the state or cache directory is unusable', async () => {
  const plugin = await CsiPlugin.start(join(dir, 'probe'));
  try {
    assert.equal((await plugin.call('Identity', 'Probe', {})).ready.value, true);
    await rm(join(dir, 'probe', 'cache'), { recursive: true, force: true });
    assert.equal((await plugin.call('Identity', 'Probe', {})).ready.value, false);
  } finally {
    await plugin.stop();
  }
});

test('without the sidecars, the node plugin registers itself with kubelet and serves /healthz', async () => {
  const registrationDir = join(dir, 'plugins_registry');
  const port = 20_000 + (process.pid % 10_000);
  const plugin = await CsiPlugin.start(join(dir, 'self-registered'), {
    args: ['--registration-dir', registrationDir, '--kubelet-registration-path', '/var/lib/kubelet/plugins/gitfs.csi.dev/csi.sock', '--health-port', String(port)],
  });
  const socket = join(registrationDir, 'gitfs.csi.dev-reg.sock');
  try {
    // What kubelet's plugin watcher asks, over the plugin registration API.
    const loaded = loadProto<{ pluginregistration: { Registration: grpc.ServiceClientConstructor } }>('pluginregistration.proto');
    const client = new loaded.pluginregistration.Registration(`unix://${socket}`, grpc.credentials.createInsecure()) as unknown as Record<string, (req: object, cb: (err: Error | null, res: Message) => void) => void>;
    const call = (method: string, request: object) => new Promise<Message>((resolve, reject) => client[method].call(client, request, (err, res) => (err ? reject(err) : resolve(res))));
    assert.deepEqual(await call('GetInfo', {}), { type: 'CSIPlugin', name: 'gitfs.csi.dev', endpoint: '/var/lib/kubelet/plugins/gitfs.csi.dev/csi.sock', supported_versions: ['1.0.0'] });
    await call('NotifyRegistrationStatus', { plugin_registered: true, error: '' });
    (client as unknown as grpc.Client).close();
    await plugin.waitForLog(/"msg":"registered with kubelet"/);

    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    await rm(join(dir, 'self-registered', 'cache'), { recursive: true, force: true });
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 503);
  } finally {
    await plugin.stop();
  }
  // The registration socket goes with the plugin, so kubelet unregisters the driver.
  await assert.rejects(stat(socket), { code: 'ENOENT' });
});
