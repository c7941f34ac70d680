import assert from 'node:assert/strict';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CsiPlugin, outcome, publishRequest } from '../support/csiPlugin';
import { commitTree, generatedTree, removeDir, tempDir } from '../support/repoFixtures';
import { SshGitServer, sshKey } from '../support/sshGitServer';

describe('per-volume SSH keys, against a real sshd on loopback', () => {
  let dir: string;
  let sshd: SshGitServer;
  let plugin: CsiPlugin;
  let repository: string;
  let n = 0;
  const target = () => join(dir, 'targets', `t${++n}`);
  const publish = (secrets: Record<string, string>, t = target()) =>
    outcome(plugin.call('Node', 'NodePublishVolume', publishRequest({ volumeId: `ssh-${n}`, target: t, context: { repository }, secrets })));

  before(async () => {
    dir = await tempDir('csi-ssh');
    sshd = new SshGitServer(join(dir, 'sshd'));
    await sshd.start();
    const bare = join(dir, 'served', 'private.git');
    await commitTree(bare, generatedTree(20));
    repository = sshd.url(bare);
    // HOME holds no key and no known_hosts: only a volume's own secret can open the server.
    await mkdir(join(dir, 'home'), { recursive: true });
    plugin = await CsiPlugin.start(join(dir, 'plugin'), { env: { HOME: join(dir, 'home') } });
  });
  after(async () => {
    await plugin.stop();
    await sshd.stop();
    await removeDir(dir);
  });

  test('no key is UNAUTHENTICATED; a wrong key or a wrong host key is PERMISSION_DENIED', async () => {
    assert.equal((await publish({})).code, 'UNAUTHENTICATED');
    const stranger = await sshKey(join(dir, 'stranger'));
    assert.equal((await publish({ 'ssh-privatekey': stranger.privateKey, known_hosts: sshd.knownHosts })).code, 'PERMISSION_DENIED');
    const otherHost = `[127.0.0.1]:${sshd.port} ${stranger.publicKey.split(' ').slice(0, 2).join(' ')}\n`;
    assert.equal((await publish({ 'ssh-privatekey': sshd.clientKey.privateKey, known_hosts: otherHost })).code, 'PERMISSION_DENIED');
  });

  test('the right key and known_hosts serve the volume, contents fetched lazily over ssh', async () => {
    const t = target();
    const result = await publish({ 'ssh-privatekey': sshd.clientKey.privateKey, known_hosts: sshd.knownHosts }, t);
    assert.equal(result.code, 'OK', result.message);
    assert.equal(await readFile(join(t, 'package.json'), 'utf8'), '{"name":"fixture"}\n');
    assert.equal(await readFile(join(t, 'bin', 'run.sh'), 'utf8'), '#!/bin/sh\necho run\n');
  });

  test('malformed SSH secrets are refused naming the key; the key never reaches a log and is gone when the plugin stops', async () => {
    const bad = await publish({ 'ssh-privatekey': 'not a key' });
    assert.equal(bad.code, 'INVALID_ARGUMENT');
    assert.match(bad.message, /^secrets\["ssh-privatekey"\]: is not a PEM or OpenSSH private key/);
    const mixed = await publish({ 'ssh-privatekey': sshd.clientKey.privateKey, password: 'x' });
    assert.match(mixed.message, /^secrets\["password"\]: cannot be combined/);
    const keyBody = sshd.clientKey.privateKey.split('\n')[1];
    assert.ok(!plugin.logs.includes(keyBody));
    const keyring = `/dev/shm/gitfs-csi-${plugin.pid}`;
    assert.ok((await stat(keyring)).isDirectory());
    await plugin.stop();
    await assert.rejects(stat(keyring), { code: 'ENOENT' });
    await plugin.launch();
  });
});
