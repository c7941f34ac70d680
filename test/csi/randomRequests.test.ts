import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { CsiPlugin, Message, outcome } from '../support/csiPlugin';
import { removeDir, tempDir } from '../support/repoFixtures';
import { readMountTable } from '../../src/mount/mountTable';

const RUNS = 10_000;
/** The codes a CSI driver answers with; UNKNOWN and INTERNAL would mean a request slipped past validation. */
const WELL_FORMED = new Set(['OK', 'INVALID_ARGUMENT', 'NOT_FOUND', 'ALREADY_EXISTS', 'ABORTED', 'FAILED_PRECONDITION', 'UNAVAILABLE', 'UNAUTHENTICATED', 'PERMISSION_DENIED']);

let dir: string;
let plugin: CsiPlugin;

before(async () => {
  dir = await tempDir('csi-random');
  // Its own network namespace: a random request that looks valid can reach no host at all.
  plugin = await CsiPlugin.start(join(dir, 'plugin'), { isolatedNetwork: true, args: ['--log-level', 'warn'] });
});

after(async () => {
  await plugin.stop();
  await removeDir(dir);
});

const text = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('', 'main', 'HEAD', 'wait', 'gate', '0', '1', '-1', 'a..b', '\u0000', 'é'), fc.string({ unit: 'binary', maxLength: 20 }));
const repository = fc.oneof(
  text,
  fc.constantFrom('https://git.invalid/r.git', 'ssh://git@host.invalid/r.git', 'git@host.invalid:r.git', 'file:///etc', 'http://u:p@h.invalid/r', 'ext::sh -c x', '-uhack'),
);
const context = fc.dictionary(
  fc.oneof(fc.constantFrom('repository', 'ref', 'commit', 'depth', 'readiness', 'csi.storage.k8s.io/pod.name', 'storage.kubernetes.io/csiProvisionerIdentity'), fc.string({ maxLength: 12 })),
  text,
  { maxKeys: 6 },
).chain((attributes) => fc.option(repository, { nil: undefined }).map((repo) => (repo === undefined ? attributes : { ...attributes, repository: repo })));
const secrets = fc.dictionary(fc.oneof(fc.constantFrom('username', 'password', 'token', 'ssh-privatekey'), fc.string({ maxLength: 8 })), text, { maxKeys: 3 });
const mode = fc.constantFrom('UNKNOWN', 'SINGLE_NODE_WRITER', 'SINGLE_NODE_READER_ONLY', 'MULTI_NODE_READER_ONLY', 'MULTI_NODE_SINGLE_WRITER', 'MULTI_NODE_MULTI_WRITER', 'SINGLE_NODE_SINGLE_WRITER', 'SINGLE_NODE_MULTI_WRITER');
const capability = fc.option(
  fc.record({ access_type: fc.constantFrom('mount', 'block'), mode }).map(({ access_type, mode: m }) => ({ [access_type]: access_type === 'mount' ? { fs_type: '', mount_flags: [] } : {}, access_mode: { mode: m } })),
  { nil: null },
);
// Paths stay inside the test directory (or are empty or relative): random requests must not touch the host.
const path = fc.oneof(fc.stringMatching(/^[a-z0-9]{1,10}$/).map((p) => join('/never', p).replace('/never', '')), fc.stringMatching(/^[a-z0-9]{1,10}$/), fc.constant(''));

// Mostly well-formed publishes, so the random values also reach the probe and the paths beyond validation.
const plausibleContext = fc.record(
  {
    repository: fc.constantFrom('https://git.invalid/r.git', 'http://127.0.0.1:9/r.git', 'ssh://git@host.invalid/r.git', 'git@host.invalid:team/r.git'),
    ref: fc.oneof(fc.constantFrom('main', 'v1.0', 'refs/heads/x', 'a'.repeat(40)), text),
    commit: fc.oneof(fc.stringMatching(/^[0-9a-f]{40}$/), text),
    depth: fc.oneof(fc.nat({ max: 5 }).map(String), text),
    readiness: fc.oneof(fc.constantFrom('wait', 'gate'), text),
  },
  { requiredKeys: ['repository'] },
);
const plausiblePublish = fc
  .record({ volume_id: fc.stringMatching(/^[a-z0-9-]{1,20}$/), target_path: fc.stringMatching(/^\/[a-z0-9]{1,10}$/), readonly: fc.boolean(), volume_context: plausibleContext, secrets: fc.oneof(fc.constant({}), secrets) })
  .map((r) => ['Node', 'NodePublishVolume', { ...r, volume_capability: { mount: { fs_type: '', mount_flags: [] }, access_mode: { mode: 'MULTI_NODE_READER_ONLY' } } }] as const);

const call = fc.oneof(
  plausiblePublish,
  fc.record({ volume_id: text, target_path: path, volume_capability: capability, readonly: fc.boolean(), volume_context: context, secrets }).map((r) => ['Node', 'NodePublishVolume', r] as const),
  fc.record({ volume_id: text, target_path: path }).map((r) => ['Node', 'NodeUnpublishVolume', r] as const),
  fc.record({ volume_id: text, volume_path: path }).map((r) => ['Node', 'NodeGetVolumeStats', r] as const),
  fc.record({ name: text, volume_capabilities: fc.array(capability.map((c) => c ?? {}), { maxLength: 3 }), parameters: context }).map((r) => ['Controller', 'CreateVolume', r] as const),
  fc.record({ volume_id: text, volume_capabilities: fc.array(capability.map((c) => c ?? {}), { maxLength: 3 }), volume_context: context }).map((r) => ['Controller', 'ValidateVolumeCapabilities', r] as const),
  fc.record({ volume_id: text }).map((r) => ['Controller', 'DeleteVolume', r] as const),
);

test(`${RUNS} random requests and volume contexts each get a well-formed answer; the server survives and mounts nothing`, async (t) => {
  const tally = new Map<string, number>();
  const rooted = (p: string) => (p.startsWith('/') ? join(dir, 'targets', p) : p);
  await fc.assert(
    fc.asyncProperty(call, async ([service, method, request]) => {
      const fixed: Message = { ...request };
      if ('target_path' in fixed) fixed.target_path = rooted(fixed.target_path);
      if ('volume_path' in fixed) fixed.volume_path = rooted(fixed.volume_path);
      const result = await outcome(plugin.call(service, method, fixed, 30_000));
      tally.set(`${method} ${result.code}`, (tally.get(`${method} ${result.code}`) ?? 0) + 1);
      assert.ok(WELL_FORMED.has(result.code), `${method} ${JSON.stringify(fixed)} → ${result.code}: ${result.message}`);
      if (result.code !== 'OK') assert.ok(result.message.length > 0 && result.message.length < 2_000, result.message);
    }),
    { numRuns: RUNS, seed: 20261124 },
  );
  t.diagnostic(JSON.stringify(Object.fromEntries([...tally].sort())));
  // The generators reach past validation too: some requests are valid enough to be probed (and find no network).
  assert.ok((tally.get('NodePublishVolume UNAVAILABLE') ?? 0) > 0 && (tally.get('CreateVolume OK') ?? 0) > 0);
  assert.equal((await plugin.call('Identity', 'Probe', {})).ready.value, true);
  assert.deepEqual((await readMountTable()).filter((m) => m.mountPoint.startsWith(dir)), []);
});
