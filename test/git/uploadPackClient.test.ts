import assert from 'node:assert/strict';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AccessDenied } from '../../src/errors/errors';
import { PackObject, PackParser } from '../../src/git/packParser';
import { RemoteUrl } from '../../src/git/remoteUrl';
import { uploadPackClientFor } from '../../src/git/uploadPackClient';
import { UseGitClient, v2TransportFor } from '../../src/git/v2Transport';
import { GitHttpServer } from '../support/gitHttpServer';
import { commitTree, generatedTree, git, removeDir, tempDir } from '../support/repoFixtures';

let dir: string;
let server: GitHttpServer;
let privateServer: GitHttpServer;
let commit: string;

before(async () => {
  dir = await tempDir('upload-pack');
  const repo = join(dir, 'repo.git');
  await commitTree(repo, generatedTree(50));
  commit = await commitTree(repo, generatedTree(60), { message: 'second' });
  await git(['--git-dir', repo, 'tag', '-a', '-m', 'annotated', 'v1', commit]);
  await git(['--git-dir', repo, 'branch', 'other', `${commit}~1`]);
  server = new GitHttpServer(dir);
  await server.start();
  privateServer = new GitHttpServer(dir, { auth: { username: 'u', password: 'right' } });
  await privateServer.start();
});
after(async () => {
  await server.stop();
  await privateServer.stop();
  await removeDir(dir);
});

const clientFor = (url: string, options: { credentials?: { username: string; password: string }; allowFile?: boolean } = {}) =>
  uploadPackClientFor({ remote: RemoteUrl.parse(url, { allowFile: options.allowFile }), credentials: options.credentials, allowFile: options.allowFile }, 10_000)!;

async function lsRemote(url: string): Promise<Map<string, string>> {
  const listing = await git(['ls-remote', url]);
  return new Map(listing.trim().split('\n').map((line) => line.split('\t').reverse() as [string, string]));
}

test('ls-refs lists what git ls-remote lists: branches, HEAD, tags and their peeled commits', async () => {
  const refs = await clientFor(server.url('repo.git')).listRefs();
  assert.deepEqual(refs.oids, await lsRemote(server.url('repo.git')));
  assert.equal(refs.oids.get('refs/tags/v1^{}'), commit);
  assert.deepEqual(refs.symrefs, new Map([['HEAD', 'refs/heads/main']]));
});

test('a depth-1 fetch without blobs brings the commit and its trees only, and says where history was cut', async () => {
  const client = clientFor(server.url('repo.git'));
  const objects: PackObject[] = [];
  const parser = new PackParser({ objectFormat: 'sha1', onObject: (o) => void objects.push(o) });
  server.resetCounters();
  const { shallow } = await client.fetch({ wants: [commit], depth: 1, filter: 'blob:none' }, (chunk) => parser.push(chunk));
  await parser.end();
  assert.deepEqual(shallow, [commit]);
  assert.deepEqual([...new Set(objects.map((o) => o.kind))].sort(), ['commit', 'tree']);
  assert.equal(objects.filter((o) => o.kind === 'commit').length, 1);
  const listed = (await git(['--git-dir', join(dir, 'repo.git'), 'ls-tree', '-r', '-d', commit])).trim().split('\n').filter((l) => l.split(/\s+/)[1] === 'tree').map((l) => l.split(/\s+/)[2]);
  const root = (await git(['--git-dir', join(dir, 'repo.git'), 'rev-parse', `${commit}^{tree}`])).trim();
  assert.deepEqual(new Set(objects.filter((o) => o.kind === 'tree').map((o) => o.oid)), new Set([root, ...listed]));
  assert.equal(server.counters.fetches, 1);
});

test('file:// remotes speak the same protocol through git upload-pack', async () => {
  const url = `file://${join(dir, 'repo.git')}`;
  const refs = await clientFor(url, { allowFile: true }).listRefs();
  assert.equal(refs.oids.get('refs/heads/main'), commit);
});

test('refused volume credentials are final; without any, git is asked (the node may have its own)', async () => {
  const url = privateServer.url('repo.git');
  await assert.rejects(clientFor(url, { credentials: { username: 'u', password: 'wrong' } }).listRefs(), AccessDenied);
  await assert.rejects(clientFor(url).listRefs(), UseGitClient);
  assert.equal((await clientFor(url, { credentials: { username: 'u', password: 'right' } }).listRefs()).oids.get('refs/heads/main'), commit);
});

test('a server error or an unknown repository makes the client step aside for git, which classifies it', async () => {
  server.failNext = { count: 2, status: 500 };
  await assert.rejects(clientFor(server.url('repo.git')).listRefs(), UseGitClient);
  server.failNext = { count: 0, status: 500 };
  await assert.rejects(clientFor(server.url('missing.git')).listRefs(), UseGitClient);
});

test('a proxy in the environment leaves http remotes to git, which honours it', () => {
  process.env.HTTPS_PROXY = 'http://proxy.invalid:3128';
  try {
    assert.equal(v2TransportFor({ remote: RemoteUrl.parse(server.url('repo.git')) }, 1000), undefined);
  } finally {
    delete process.env.HTTPS_PROXY;
  }
  assert.equal(v2TransportFor({ remote: RemoteUrl.parse('ssh://git@example.invalid/repo.git') }, 1000), undefined);
});

test('a server answering 200 with something other than pkt-lines (a login page) is left to git', async () => {
  const page = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<html><body>please sign in</body></html>');
  });
  await new Promise<void>((resolve) => page.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(page.address() as AddressInfo).port}/repo.git`;
    await assert.rejects(clientFor(url).listRefs(), UseGitClient);
    await assert.rejects(clientFor(url).fetch({ wants: [commit] }, async () => undefined), UseGitClient);
  } finally {
    await new Promise((resolve) => page.close(resolve));
  }
});
