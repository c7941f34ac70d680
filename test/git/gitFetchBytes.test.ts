import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { receivedBytes } from '../../src/git/receivedBytes';
import { resolveRemoteRef } from '../../src/git/remoteRefs';
import { RemoteUrl } from '../../src/git/remoteUrl';
import { RepositoryStore } from '../../src/git/repositoryStore';
import { GitHttpServer } from '../support/gitHttpServer';
import { commitTree, generatedTree, removeDir, tempDir } from '../support/repoFixtures';

let dir: string;
let server: GitHttpServer;
before(async () => {
  dir = await tempDir('fetch-bytes');
  await commitTree(join(dir, 'served', 'app.git'), generatedTree(30));
  server = new GitHttpServer(join(dir, 'served'));
  await server.start();
});
after(async () => {
  await server.stop();
  await removeDir(dir);
});

const packBytes = async (gitDir: string) => {
  const packs = (await readdir(join(gitDir, 'objects', 'pack'))).filter((name) => name.endsWith('.pack'));
  let total = 0;
  for (const pack of packs) total += (await stat(join(gitDir, 'objects', 'pack', pack))).size;
  return total;
};

test("bytes git fetches into a store count towards the remote's host, once: the packs it stored", async () => {
  const access = { remote: RemoteUrl.parse(server.url('app.git')) };
  const host = new URL(server.url('app.git')).host;
  const store = new RepositoryStore(join(dir, 'store.git'), access.remote.key, { commandMs: 30_000, fetchMs: 60_000 });
  const resolved = await resolveRemoteRef(access, 'main', 30_000);
  const before = receivedBytes().get(host) ?? 0;
  assert.equal(await store.fetchCommit(access, resolved, 1), true);
  const trees = await packBytes(store.gitDir);
  assert.ok(trees > 0);
  assert.equal((receivedBytes().get(host) ?? 0) - before, trees);
  // Blobs fetched by id land in a pack of their own; the trees' pack is not counted again.
  const blobs = await listBlobs(store, resolved.commit);
  assert.ok(blobs.length >= 5);
  await store.fetchBlobs(access, blobs.slice(0, 5));
  assert.equal((receivedBytes().get(host) ?? 0) - before, await packBytes(store.gitDir));
  store.close();
});

async function listBlobs(store: RepositoryStore, commit: string): Promise<string[]> {
  const child = store.listTree(commit);
  let out = '';
  for await (const chunk of child.stdout!) out += chunk;
  return out.split('\0').filter((line) => line.includes(' blob ')).map((line) => line.split(' ')[2].split('\t')[0]);
}
