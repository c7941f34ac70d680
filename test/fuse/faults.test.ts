import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '../support/freePort';
import { commitTree, generatedTree, git } from '../support/repoFixtures';
import { NodeHarness, run } from '../support/nodeHarness';
import { GitfsError } from '../../src/errors/errors';

const fileAt = (n: number) => `src/mod${n % 23}/pkg${n % 7}${n % 3 === 0 ? '/deep/er' : ''}/file${n}.${n % 5 === 0 ? 'go' : 'txt'}`;


function assertKind(kind: string, pattern?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof GitfsError, `expected a GitfsError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  };
}

describe('bad input and faults', () => {
  let harness: NodeHarness;
  let commit: string;

  before(async () => {
    harness = await NodeHarness.start({ config: { filesystem: { gateWaitMs: 1500, readWaitMs: 8000, prefetch: { siblingFiles: 0, siblingBytes: 0, bulkAfterColdReads: 0} } } });
    commit = await commitTree(harness.repoDir('repo.git'), generatedTree(400));
    await commitTree(harness.repoDir('repo.git'), [{ path: 'tagged.txt', content: 'v1\n' }], { branch: 'release' });
    await git(['--git-dir', harness.repoDir('repo.git'), 'tag', '-a', '-m', 'v1', 'v1.0', 'release']);
    await git(['init', '--bare', '-q', harness.repoDir('empty.git')]);
  });
  after(() => harness.stop());

  test('a repository that does not exist is RepositoryNotFound', async () => {
    await assert.rejects(harness.publisher.probe({ repository: harness.url('nope.git') }), assertKind('repository-not-found', /nope\.git was not found/));
  });

  test('an empty repository is EmptyRepository', async () => {
    await assert.rejects(harness.publisher.probe({ repository: harness.url('empty.git') }), assertKind('empty-repository', /empty/));
  });

  test('an unknown ref is RefNotFound naming the ref', async () => {
    await assert.rejects(harness.publisher.probe({ repository: harness.url('repo.git'), ref: 'no-such-branch' }), assertKind('ref-not-found', /no-such-branch/));
  });

  test('a malformed ref is refused before any network use', async () => {
    harness.server.resetCounters();
    await assert.rejects(harness.publisher.probe({ repository: harness.url('repo.git'), ref: 'bad..ref' }), assertKind('invalid-argument', /ref: "bad\.\.ref"/));
    assert.equal(harness.server.counters.infoRefs, 0);
  });

  test('branches, annotated tags and commit ids resolve', async () => {
    const byBranch = await harness.publisher.probe({ repository: harness.url('repo.git'), ref: 'main' });
    assert.equal(byBranch.resolved.commit, commit);
    const release = (await git(['--git-dir', harness.repoDir('repo.git'), 'rev-parse', 'release'])).trim();
    const byTag = await harness.publisher.probe({ repository: harness.url('repo.git'), ref: 'v1.0' });
    assert.equal(byTag.resolved.commit, release);
    assert.equal(byTag.resolved.refName, 'refs/tags/v1.0');
    const target = harness.target('by-tag');
    await harness.publisher.publish({ repository: harness.url('repo.git'), ref: 'v1.0', target });
    assert.equal(await readFile(join(target, 'tagged.txt'), 'utf8'), 'v1\n');
    await harness.publisher.unpublish(target);
    const byCommit = await harness.publisher.probe({ repository: harness.url('repo.git'), ref: commit });
    assert.equal(byCommit.resolved.commit, commit);
  });

  test('connection refused is Unavailable, quickly', async () => {
    const port = await freePort();
    await assert.rejects(harness.publisher.probe({ repository: `http://127.0.0.1:${port}/repo.git` }), assertKind('unavailable', /cannot connect/));
  });

  test('file:// and unknown transports are refused unless enabled', async () => {
    await assert.rejects(harness.publisher.probe({ repository: `file://${harness.repoDir('repo.git')}` }), assertKind('invalid-argument', /file:\/\/, which is disabled/));
    await assert.rejects(harness.publisher.probe({ repository: 'ext::sh -c touch% /tmp/pwned' }), assertKind('invalid-argument'));
    await assert.rejects(harness.publisher.probe({ repository: 'git://127.0.0.1/repo.git' }), assertKind('invalid-argument', /"git" transport/));
  });

  test('transient server errors (5xx) are retried', async () => {
    harness.server.failNext = { count: 2, status: 502 };
    const { resolved } = await harness.publisher.probe({ repository: harness.url('repo.git') });
    assert.equal(resolved.commit, commit);
    assert.equal(harness.server.failNext.count, 0);
  });

  test('a preparation that fails turns operations into EIO and keeps the reason', async () => {
    harness.server.options.rejectFetchesWith = 404;
    try {
      await harness.restart({ cold: true });
      const target = harness.target('failing');
      const published = await harness.publisher.publish({ repository: harness.url('repo.git'), target });
      const ls = await run('ls', [target]);
      assert.notEqual(ls.code, 0);
      assert.match(ls.stderr, /Input\/output error/);
      assert.equal(published.preparation.phase, 'failed');
      assert.match(published.preparation.failure!.message, /preparation failed while fetching: repository .* was not found/);
      assert.match(harness.logs, /preparation failed/);
      await harness.publisher.unpublish(target);
    } finally {
      harness.server.options.rejectFetchesWith = undefined;
    }
    // The next publish retries from scratch and succeeds.
    const target = harness.target('retried');
    await harness.publisher.publish({ repository: harness.url('repo.git'), target });
    assert.equal(await readFile(join(target, 'README.md'), 'utf8'), '# generated fixture\n');
    await harness.publisher.unpublish(target);
  });

  test('operations wait at the readiness gate, and the wait is bounded', async () => {
    await harness.restart({ cold: true });
    await harness.server.withFetchDelay(4000, async () => {
      const target = harness.target('gated');
      const started = Date.now();
      const published = await harness.publisher.publish({ repository: harness.url('repo.git'), target });
      assert.ok(Date.now() - started < 3000, 'publish returns before the fetch completes');
      assert.equal(published.preparation.gate.state, 'pending');
      // The root is visible at once; listing it waits, and gives up after gateWaitMs (1.5 s) with EIO.
      const ls = await run('ls', [target]);
      assert.match(ls.stderr, /Input\/output error/);
      assert.ok(Date.now() - started < 4000, 'the bounded wait ended before the server answered');
      await published.preparation.gate.wait(20_000);
      const after = await run('ls', [target]);
      assert.equal(after.code, 0);
      assert.match(after.stdout, /README\.md/);
      await harness.publisher.unpublish(target);
    });
  });

  test('a "wait" publish counts its budget from when the call began, access probe included', async () => {
    await harness.restart({ cold: true });
    await harness.server.withFetchDelay(4000, async () => {
      const began = Date.now();
      // The caller's 1.5 s were spent before this publish began: "not yet" comes at once, with the phase, not after 1.5 s more.
      const publishing = harness.publisher.publish({ repository: harness.url('repo.git'), target: harness.target('budget'), readiness: 'wait', readyWaitMs: 1500, startedAt: began - 1500 });
      await assert.rejects(publishing, assertKind('not-ready', /is still fetching for/));
      assert.ok(Date.now() - began < 1500, 'no second wait');
    });
  });

  test('a server killed mid-read: reads fail with EIO in bound, cached files still work, then recovery', async () => {
    await harness.restart();
    const target = harness.target('killed');
    const published = await harness.publisher.publish({ repository: harness.url('repo.git'), target });
    await published.preparation.sizes.wait(20_000);
    const cached = fileAt(1);
    const cold = fileAt(2);
    const cachedBytes = await readFile(join(target, cached), 'utf8');
    harness.server.options.fetchDelayMs = 300;
    const reading = run('cat', [join(target, cold)]);
    await new Promise((resolve) => setTimeout(resolve, 150));
    await harness.server.stop();
    const started = Date.now();
    const failed = await reading;
    assert.notEqual(failed.code, 0);
    assert.match(failed.stderr, /Input\/output error/);
    assert.ok(Date.now() - started < 9000);
    assert.equal(await readFile(join(target, cached), 'utf8'), cachedBytes);
    harness.server.options.fetchDelayMs = undefined;
    await harness.server.start();
    const recovered = await run('cat', [join(target, cold)]);
    assert.equal(recovered.code, 0, recovered.stderr);
    assert.equal(recovered.stdout, await git(['--git-dir', harness.repoDir('repo.git'), 'show', `${commit}:${cold}`]));
    await harness.publisher.unpublish(target);
  });

  test('a corrupted cache file is detected, refetched and never served', async () => {
    await harness.restart();
    const target = harness.target('corrupt');
    let published = await harness.publisher.publish({ repository: harness.url('repo.git'), target });
    const path = fileAt(3);
    const good = await readFile(join(target, path), 'utf8');
    const oid = (await git(['--git-dir', harness.repoDir('repo.git'), 'rev-parse', `${commit}:${path}`])).trim();
    await harness.publisher.unpublish(target);
    await harness.restart();
    const copy = harness.node.cache.locationOf(oid)!;
    const file = await open(copy.path, 'r+');
    await file.write('X'.repeat(good.length), copy.offset);
    await file.close();
    published = await harness.publisher.publish({ repository: harness.url('repo.git'), target });
    assert.equal(await readFile(join(target, path), 'utf8'), good);
    assert.equal(harness.node.cache.stats().corruptDiscarded, 1);
    assert.match(harness.logs, /failed verification/);
    assert.notDeepEqual(harness.node.cache.locationOf(oid), copy, 'the refetched copy is a new record');
    assert.equal(await harness.node.cache.readWhole(oid).then(String), good);
    void published;
    await harness.publisher.unpublish(target);
  });
});

describe('credentials', () => {
  let harness: NodeHarness;
  before(async () => {
    harness = await NodeHarness.start({ server: { auth: { username: 'reader', password: 's3cret-pass' } } });
    await commitTree(harness.repoDir('private.git'), generatedTree(50));
  });
  after(() => harness.stop());

  test('no credentials is AuthenticationRequired', async () => {
    await assert.rejects(harness.publisher.probe({ repository: harness.url('private.git') }), assertKind('authentication-required', /requires credentials/));
  });

  test('wrong credentials are AccessDenied, and the password appears nowhere', async () => {
    await assert.rejects(harness.publisher.probe({ repository: harness.url('private.git', 'reader:wrong-pass') }), (err: Error) => {
      assertKind('access-denied')(err);
      assert.doesNotMatch(err.message, /wrong-pass/);
      return true;
    });
  });

  test('credentials in the URL work, through fetch, object-info and hydration, and never reach logs or disk config', async () => {
    const target = harness.target('private');
    const published = await harness.publisher.publish({ repository: harness.url('private.git', 'reader:s3cret-pass'), target });
    await published.preparation.sizes.wait(20_000);
    assert.equal(await readFile(join(target, 'README.md'), 'utf8'), '# generated fixture\n');
    assert.ok(harness.server.counters.objectInfo >= 1);
    assert.doesNotMatch(harness.logs, /s3cret-pass/);
    assert.match(harness.logs, /\*\*\*@127\.0\.0\.1|http:\/\/127\.0\.0\.1/);
    const grep = await run('grep', ['-r', '-l', 's3cret-pass', harness.config.cacheDir]);
    assert.equal(grep.stdout, '');
    await harness.publisher.unpublish(target);
  });

  test('explicit credentials work the same way', async () => {
    const { resolved } = await harness.publisher.probe({ repository: harness.url('private.git'), credentials: { username: 'reader', password: 's3cret-pass' } });
    assert.match(resolved.commit, /^[0-9a-f]{40}$/);
  });
});
