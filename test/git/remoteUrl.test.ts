import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RemoteUrl } from '../../src/git/remoteUrl';
import { redact } from '../../src/log/redact';

test('https URLs normalize to one key per repository', () => {
  const a = RemoteUrl.parse('https://GitHub.com/org/repo.git');
  const b = RemoteUrl.parse('https://github.com:443/org/repo/');
  const c = RemoteUrl.parse('http://github.com/org/repo');
  assert.equal(a.key, b.key);
  assert.equal(a.key, c.key);
  assert.equal(a.transport, 'https');
  assert.equal(a.storeName, b.storeName);
  assert.notEqual(a.key, RemoteUrl.parse('https://github.com/org/other').key);
});

test('userinfo is taken out of the URL into credentials', () => {
  const remote = RemoteUrl.parse('https://user:p%40ss@example.com/r.git');
  assert.equal(remote.url, 'https://example.com/r.git');
  assert.deepEqual(remote.credentials, { username: 'user', password: 'p@ss' });
  assert.doesNotMatch(remote.display, /p@ss|p%40ss/);
});

test('scp-like ssh addresses become ssh URLs; an ssh password is refused', () => {
  const remote = RemoteUrl.parse('git@example.com:org/repo.git');
  assert.equal(remote.transport, 'ssh');
  assert.equal(remote.url, 'ssh://git@example.com/org/repo.git');
  assert.throws(() => RemoteUrl.parse('ssh://git:secret@example.com/r'), /repository: .* carries a password/);
});

test('only https, http and ssh are allowed; file:// only when enabled', () => {
  for (const bad of ['git://example.com/r', 'ext::sh -c id', 'ftp://example.com/r', '/srv/repo.git', 'file:///srv/repo.git', '', '-u', 'https://']) {
    assert.throws(() => RemoteUrl.parse(bad), (err: Error) => /^repository: /.test(err.message), bad);
  }
  assert.equal(RemoteUrl.parse('file:///srv/repo.git', { allowFile: true }).transport, 'file');
  assert.equal(RemoteUrl.parse('/srv/repo.git', { allowFile: true }).url, 'file:///srv/repo.git');
});

test('redaction removes userinfo, authorization headers and token shapes', () => {
  assert.equal(redact('fetch https://bob:hunter2@h/x failed'), 'fetch https://***@h/x failed');
  assert.equal(redact('Authorization: Basic dXNlcjpwYXNz'), 'Authorization: Basic ***');
  assert.equal(redact('token ghp_abcdefghijklmnopqrstuvwxyz0123'), 'token ***');
});
