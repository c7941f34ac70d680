import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { loadSync, PackageDefinition } from '@grpc/proto-loader';
import { CSI_LOADER_OPTIONS, CSI_PROTO_PATH } from '../../src/csi/csiProto';

const SPEC_MODULE = 'github.com/container-storage-interface/spec@v1.12.0';

/** Every message, enum and service of a definition as plain data: names, numbers, types, labels, options, streaming. */
function wireShape(definition: PackageDefinition): Record<string, unknown> {
  const shape: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(definition)) {
    if (!name.startsWith('csi.')) continue;
    if ('format' in value) {
      const type = value.type as { name: string; field?: unknown[]; nestedType?: unknown[]; enumType?: unknown[]; oneofDecl?: unknown[]; value?: unknown[]; options?: unknown };
      shape[name] = JSON.parse(JSON.stringify(type));
    } else {
      shape[name] = Object.fromEntries(
        Object.entries(value).map(([method, m]) => [method, { path: m.path, requestStream: m.requestStream, responseStream: m.responseStream, request: (m.requestType.type as { name: string }).name, response: (m.responseType.type as { name: string }).name }]),
      );
    }
  }
  return shape;
}

test('proto/csi.proto is wire-identical to the official CSI v1.12.0 definition', async () => {
  const { stdout } = await promisify(execFile)('go', ['mod', 'download', '-json', SPEC_MODULE], { env: { ...process.env, GOFLAGS: '-mod=mod' }, cwd: '/' });
  const official = join(JSON.parse(stdout).Dir, 'csi.proto');
  const ours = wireShape(loadSync(CSI_PROTO_PATH, CSI_LOADER_OPTIONS));
  const theirs = wireShape(loadSync(official, CSI_LOADER_OPTIONS));
  assert.deepEqual(Object.keys(ours).sort(), Object.keys(theirs).sort());
  for (const name of Object.keys(theirs)) assert.deepEqual(ours[name], theirs[name], name);
  // The services gitfs-csi serves are all there, with every method.
  assert.deepEqual(Object.keys(ours['csi.v1.Node'] as object).sort(), ['NodeExpandVolume', 'NodeGetCapabilities', 'NodeGetInfo', 'NodeGetVolumeStats', 'NodePublishVolume', 'NodeStageVolume', 'NodeUnpublishVolume', 'NodeUnstageVolume']);
});
