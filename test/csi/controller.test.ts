import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CsiPlugin, outcome } from '../support/csiPlugin';
import { removeDir, tempDir } from '../support/repoFixtures';

let dir: string;
let plugin: CsiPlugin;

before(async () => {
  dir = await tempDir('csi-controller');
  plugin = await CsiPlugin.start(join(dir, 'plugin'));
});
after(async () => {
  await plugin.stop();
  await removeDir(dir);
});

const mount = (mode: string) => ({ mount: { fs_type: '', mount_flags: [] }, access_mode: { mode } });
const create = (request: object) => plugin.call('Controller', 'CreateVolume', { volume_capabilities: [mount('MULTI_NODE_READER_ONLY')], ...request });

test('identity: plugin info, the controller capability, and a ready probe', async () => {
  assert.equal((await plugin.call('Identity', 'GetPluginInfo', {})).name, 'gitfs.csi.dev');
  const capabilities = (await plugin.call('Identity', 'GetPluginCapabilities', {})).capabilities;
  assert.deepEqual(capabilities.map((c: { service: { type: string } }) => c.service.type), ['CONTROLLER_SERVICE']);
  assert.deepEqual((await plugin.call('Node', 'NodeGetCapabilities', {})).capabilities.map((c: { rpc: { type: string } }) => c.rpc.type), ['GET_VOLUME_STATS', 'VOLUME_CONDITION']);
  const info = await plugin.call('Node', 'NodeGetInfo', {});
  assert.equal(info.node_id, 'test-node');
  assert.equal(Number(info.max_volumes_per_node), 0);
});

test('CreateVolume: parameters validated, a deterministic id, the parameters as context, a reused name with other parameters refused', async () => {
  const parameters = { repository: 'https://example.com/team/project.git', ref: 'main', 'csi.storage.k8s.io/pvc/name': 'claim' };
  const first = await create({ name: 'pvc-1234', parameters });
  const again = await create({ name: 'pvc-1234', parameters });
  assert.equal(first.volume.volume_id, again.volume.volume_id);
  assert.match(first.volume.volume_id, /^gitfs-[0-9a-f]{40}$/);
  assert.equal(Number(first.volume.capacity_bytes), 0);
  assert.deepEqual(first.volume.volume_context, { repository: 'https://example.com/team/project.git', ref: 'main' });
  assert.notEqual((await create({ name: 'pvc-5678', parameters })).volume.volume_id, first.volume.volume_id);
  const reused = await outcome(create({ name: 'pvc-1234', parameters: { ...parameters, ref: 'develop' } }));
  assert.equal(reused.code, 'ALREADY_EXISTS');

  const invalid: Array<[object, RegExp]> = [
    [{ name: '', parameters }, /^name: is required/],
    [{ name: 'x', parameters, volume_capabilities: [] }, /^volume_capabilities: is required/],
    [{ name: 'x', parameters, volume_capabilities: [{ block: {}, access_mode: { mode: 'MULTI_NODE_READER_ONLY' } }] }, /^volume_capabilities\[0\]: access type "block"/],
    [{ name: 'x', parameters: {} }, /^parameters\["repository"\]: is required/],
    [{ name: 'x', parameters: { ...parameters, depth: 'all' } }, /^parameters\["depth"\]/],
    [{ name: 'x', parameters: { ...parameters, shallow: 'yes' } }, /^parameters\["shallow"\]: unknown key/],
  ];
  for (const [request, pattern] of invalid) {
    const result = await outcome(create(request));
    assert.equal(result.code, 'INVALID_ARGUMENT', result.message);
    assert.match(result.message, pattern);
  }
});

test('DeleteVolume is OK for any id; ValidateVolumeCapabilities knows its own ids and confirms all but multi-node writers', async () => {
  await plugin.call('Controller', 'DeleteVolume', { volume_id: 'never-created' });
  assert.equal((await outcome(plugin.call('Controller', 'DeleteVolume', { volume_id: '' }))).code, 'INVALID_ARGUMENT');
  const { volume } = await create({ name: 'pvc-validate', parameters: { repository: 'https://example.com/r.git' } });
  const validate = (volumeId: string, mode: string) =>
    plugin.call('Controller', 'ValidateVolumeCapabilities', { volume_id: volumeId, volume_context: volume.volume_context, volume_capabilities: [mount(mode)] });
  assert.equal((await validate(volume.volume_id, 'MULTI_NODE_READER_ONLY')).confirmed.volume_capabilities.length, 1);
  assert.equal((await validate(volume.volume_id, 'SINGLE_NODE_WRITER')).confirmed.volume_capabilities.length, 1);
  const writer = await validate(volume.volume_id, 'MULTI_NODE_MULTI_WRITER');
  assert.equal(writer.confirmed, null);
  assert.match(writer.message, /MULTI_NODE_MULTI_WRITER is served only when published readonly: a volume's writes stay on the node/);
  assert.equal((await outcome(validate('someone-elses-volume', 'MULTI_NODE_READER_ONLY'))).code, 'NOT_FOUND');
});
