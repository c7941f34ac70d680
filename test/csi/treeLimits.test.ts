import assert from 'node:assert/strict';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { mountsAt } from '../../src/mount/mountTable';
import { CsiPlugin, outcome, publishRequest } from '../support/csiPlugin';
import { GitHttpServer } from '../support/gitHttpServer';
import { commitTree, generatedTree, removeDir, tempDir } from '../support/repoFixtures';

describe('tree limits: entries and bytes of a commit, per node and per volume, and the largest blob served', () => {
  let dir: string;
  let server: GitHttpServer;
  let plugin: CsiPlugin;
  let n = 0;
  const target = () => join(dir, 'targets', `t${++n}`);
  const publish = (context: Record<string, string>, t = target()) =>
    outcome(plugin.call('Node', 'NodePublishVolume', publishRequest({ volumeId: `limits-${n}`, target: t, context })));
  /** A refused publish mounts nothing at its target. */
  const refused = async (context: Record<string, string>, code: string, message: RegExp) => {
    const t = target();
    const result = await publish(context, t);
    assert.equal(result.code, code, result.message);
    assert.match(result.message, message);
    assert.deepEqual(await mountsAt(t), []);
  };

  before(async () => {
    dir = await tempDir('csi-limits');
    const root = join(dir, 'served');
    await commitTree(join(root, 'small.git'), generatedTree(10));
    await commitTree(join(root, 'many.git'), generatedTree(200));
    await commitTree(join(root, 'heavy.git'), [{ path: 'README.md', content: 'heavy\n' }, { path: 'data.bin', size: 10 * 1024 * 1024, byte: 1 }]);
    server = new GitHttpServer(root);
    await server.start();
    plugin = await CsiPlugin.start(join(dir, 'plugin'), { args: ['--max-tree-entries', '100', '--max-commit-bytes', '8Mi', '--max-blob-bytes', '1Mi'] });
  });
  after(async () => {
    await plugin?.stop();
    await server?.stop();
    await removeDir(dir);
  });

  test("a commit over the node's limits is RESOURCE_EXHAUSTED before anything is mounted", async () => {
    await refused({ repository: server.url('many.git') }, 'RESOURCE_EXHAUSTED', /has \d+ entries, over this node's limit of 100 \(--max-tree-entries\)/);
    await refused({ repository: server.url('heavy.git') }, 'RESOURCE_EXHAUSTED', /holds 10(\.0)? MiB of files, over this node's limit \(--max-commit-bytes\) of 8(\.0)? MiB/);
  });

  test("a volume's own lower limits are checked the same way; higher ones than the node's are INVALID_ARGUMENT", async () => {
    const repository = server.url('small.git');
    await refused({ repository, maxTreeEntries: '5' }, 'RESOURCE_EXHAUSTED', /has \d+ entries, over the volume's limit of 5 \(maxTreeEntries\)/);
    await refused({ repository, maxCommitBytes: '1Mi', readiness: 'gate' }, 'RESOURCE_EXHAUSTED', /holds 3(\.0)? MiB of files, over the volume's limit \(maxCommitBytes\) of 1(\.0)? MiB/);
    await refused({ repository, maxTreeEntries: '1000' }, 'INVALID_ARGUMENT', /^volume_context\["maxTreeEntries"\]: 1000 is over this node's --max-tree-entries \(100\)/);
    await refused({ repository, maxCommitBytes: '9Mi' }, 'INVALID_ARGUMENT', /^volume_context\["maxCommitBytes"\]: 9(\.0)? MiB is over this node's --max-commit-bytes \(8(\.0)? MiB\)/);
    await refused({ repository, maxTreeEntries: 'lots' }, 'INVALID_ARGUMENT', /^volume_context\["maxTreeEntries"\]: "lots" is not a positive integer/);
  });

  test('within the limits the volume serves its files, but a file over --max-blob-bytes reads as EFBIG', async () => {
    const t = target();
    const result = await publish({ repository: server.url('small.git'), maxTreeEntries: '100', maxCommitBytes: '4Mi' }, t);
    assert.equal(result.code, 'OK', result.message);
    assert.equal(await readFile(join(t, 'README.md'), 'utf8'), '# generated fixture\n');
    const large = await open(join(t, 'assets', 'large.bin'));
    try {
      assert.equal((await large.stat()).size, 3 * 1024 * 1024 + 17);
      await assert.rejects(large.read(Buffer.alloc(16), 0, 16, 0), { code: 'EFBIG' });
    } finally {
      await large.close();
    }
    await plugin.call('Node', 'NodeUnpublishVolume', { volume_id: `limits-${n}`, target_path: t });
    await plugin.waitForLog(/blob [0-9a-f]{40} is 3(\.0)? MiB, over the largest this node serves \(--max-blob-bytes 1(\.0)? MiB\)/);
  });
});
