import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { treesDirOf } from '../../src/config/nodeConfig';
import { readMountTable } from '../../src/mount/mountTable';
import { TreeIndex } from '../../src/tree/treeIndex';
import { NodeHarness } from '../support/nodeHarness';
import { commitTree, generatedTree } from '../support/repoFixtures';

const GRACE_MS = 2000;

describe("a commit's record", () => {
  let harness: NodeHarness;
  const branches = ['one', 'two', 'three'];
  /** Fetched by no test before the one that makes its preparation fail. */
  const unfetched = 'four';

  before(async () => {
    harness = await NodeHarness.start({ config: { treeMountGraceMs: GRACE_MS } });
    for (const [seed, branch] of [...branches, unfetched].entries()) await commitTree(harness.repoDir('repo.git'), generatedTree(200, seed + 1), { branch });
  });
  after(() => harness.stop());

  const treeMounts = async () => (await readMountTable()).filter((m) => m.mountPoint.startsWith(treesDirOf(harness.config))).map((m) => m.mountPoint);

  test('is dropped after its grace period: unmounted, and its tree index collectable', async () => {
    // Published and unpublished in a function of its own: nothing in this frame refers to a record.
    const publishAndUnpublish = async (branch: string): Promise<WeakRef<TreeIndex>> => {
      const target = harness.target(`dropped-${branch}`);
      const published = await harness.publisher.publish({ repository: harness.url('repo.git'), ref: branch, target });
      await published.preparation.sizes.wait(30_000);
      assert.equal(await readFile(join(target, 'README.md'), 'utf8'), '# generated fixture\n');
      await harness.publisher.unpublish(target);
      return new WeakRef(published.preparation.gate.value!.index);
    };
    const indexes: Array<WeakRef<TreeIndex>> = [];
    for (const branch of branches) indexes.push(await publishAndUnpublish(branch));
    // Warm for the grace period, then gone.
    assert.equal(harness.node.commits.size, branches.length);
    assert.equal((await treeMounts()).length, branches.length);
    await until(() => harness.node.commits.size === 0, GRACE_MS + 10_000, 'every record dropped');
    assert.deepEqual(await treeMounts(), []);
    await collectGarbage();
    assert.deepEqual(indexes.map((index) => index.deref() === undefined), branches.map(() => true), 'no tree index is still referenced');
  });

  test('revives when published again within its grace period: same mount, nothing fetched', async () => {
    const first = harness.target('warm-1');
    const a = await harness.publisher.publish({ repository: harness.url('repo.git'), ref: 'one', target: first });
    await a.preparation.sizes.wait(30_000);
    await readFile(join(first, 'README.md'));
    await harness.publisher.unpublish(first);
    harness.server.resetCounters();
    const second = harness.target('warm-2');
    const b = await harness.publisher.publish({ repository: harness.url('repo.git'), ref: 'one', target: second });
    assert.equal(b.record, a.record);
    assert.equal(b.treeMount, a.treeMount);
    assert.equal(b.preparation, a.preparation);
    assert.equal(await readFile(join(second, 'README.md'), 'utf8'), '# generated fixture\n');
    // Only the access probe crossed the network.
    assert.equal(harness.server.counters.fetches, 0);
    assert.equal(harness.server.counters.objectInfo, 0);
    assert.deepEqual(await treeMounts(), [a.treeMount.dir]);
    await harness.publisher.unpublish(second);
    await until(() => harness.node.commits.size === 0, GRACE_MS + 10_000, 'the record dropped');
  });

  test('replaces a failed preparation on the next publish, under the same mount', async () => {
    const first = harness.target('failed-1');
    harness.server.options.rejectFetchesWith = 500;
    const a = await (async () => {
      try {
        const published = await harness.publisher.publish({ repository: harness.url('repo.git'), ref: unfetched, target: first });
        await assert.rejects(published.preparation.gate.wait(30_000), { kind: 'preparation-failed' });
        return published;
      } finally {
        harness.server.options.rejectFetchesWith = undefined;
      }
    })();
    assert.equal(a.preparation.phase, 'failed');
    const second = harness.target('failed-2');
    const b = await harness.publisher.publish({ repository: harness.url('repo.git'), ref: unfetched, target: second });
    assert.notEqual(b.preparation, a.preparation);
    assert.equal(b.record, a.record);
    assert.equal(b.treeMount, a.treeMount);
    await b.preparation.gate.wait(30_000);
    // The first consumer's view waits at the new gate too.
    assert.equal(await readFile(join(first, 'README.md'), 'utf8'), '# generated fixture\n');
    await harness.publisher.unpublish(first);
    await harness.publisher.unpublish(second);
  });

  test("replaces a restore's preparation on the first real publish, not on another restore", async () => {
    const target = (name: string) => harness.target(`restored-${name}`);
    const { resolved } = await harness.publisher.probe({ repository: harness.url('repo.git'), ref: 'three' });
    const restore = (name: string) => harness.publisher.restore({ repository: harness.url('repo.git'), commit: resolved.commit, refName: resolved.refName, target: target(name) });
    const restored = await restore('a');
    assert.equal((await restore('b')).preparation, restored.preparation);
    const published = await harness.publisher.publish({ repository: harness.url('repo.git'), ref: 'three', target: target('c') });
    assert.notEqual(published.preparation, restored.preparation);
    assert.equal(published.treeMount, restored.treeMount);
    assert.equal((await restore('d')).preparation, published.preparation);
    for (const name of ['a', 'b', 'c', 'd']) await harness.publisher.unpublish(target(name));
  });
});

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A full collection, from a test runner started without --expose-gc. */
async function collectGarbage(): Promise<void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // WeakRefs are cleared only after the job that created them ends: collect across a few turns.
  for (let turn = 0; turn < 3; turn++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
}
