import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fetchObjectSizes } from '../../src/git/objectInfo';
import { RemoteAccess } from '../../src/git/gitEnvironment';
import { RemoteUrl } from '../../src/git/remoteUrl';
import { uploadPackClientFor } from '../../src/git/uploadPackClient';
import { GitHttpServer } from '../support/gitHttpServer';
import { commitTree, generatedTree, git, removeDir, tempDir } from '../support/repoFixtures';

let dir: string;

const clientFor = (access: RemoteAccess) => uploadPackClientFor(access, 10_000);

let server: GitHttpServer;
let expected: Map<string, number>;

before(async () => {
  dir = await tempDir('object-info');
  await commitTree(join(dir, 'repo.git'), generatedTree(120));
  server = new GitHttpServer(dir);
  await server.start();
  const listing = await git(['--git-dir', join(dir, 'repo.git'), 'ls-tree', '-r', '-l', 'HEAD']);
  expected = new Map(listing.split('\n').filter((l) => l.includes(' blob ')).map((l) => {
    const [, , oid, size] = l.split(/\s+/);
    return [oid, Number(size)];
  }));
});
after(async () => {
  await server.stop();
  await removeDir(dir);
});

test('object-info over smart HTTP returns every size in one request, no contents', async () => {
  const sizes = await fetchObjectSizes(clientFor({ remote: RemoteUrl.parse(server.url('repo.git')) }), [...expected.keys()]);
  assert.deepEqual(sizes, expected);
  assert.equal(server.counters.objectInfo, 1);
  assert.equal(server.counters.fetches, 0);
});

test('object-info over file:// talks to git upload-pack directly, only when file is allowed', async () => {
  const remote = RemoteUrl.parse(`file://${join(dir, 'repo.git')}`, { allowFile: true });
  assert.deepEqual(await fetchObjectSizes(clientFor({ remote, allowFile: true }), [...expected.keys()]), expected);
  assert.equal(clientFor({ remote, allowFile: false }), undefined, 'no client of ours for file:// unless allowed');
});
