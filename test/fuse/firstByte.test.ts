import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { commitTree, generatedTree, git } from '../support/repoFixtures';
import { NodeHarness, run } from '../support/nodeHarness';
import { ServerOptions } from '../support/gitHttpServer';
import { DEFAULT_FILESYSTEM_OPTIONS } from '../../src/fuse/treeFilesystem';

// Requests for the whole tree's blobs are held back; one entry's ask for its directory's, a read's for one blob.
const TREE_WIDE = 100;
const FILE = 'src/mod10/pkg3/file10.go';

/** A node whose server holds every request for the tree's sizes (object-info, or the blobs without it) until released. */
async function heldBack(server: ServerOptions = {}) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const held: string[] = [];
  const asked: Array<[string, number]> = [];
  const harness = await NodeHarness.start({
    server: { ...server, hold: (request, oids) => (asked.push([request, oids]), oids > TREE_WIDE ? (held.push(request), released) : undefined) },
    // Nothing is fetched beyond what is read, so that the fetches counted are the reads'.
    config: { filesystem: { ...DEFAULT_FILESYSTEM_OPTIONS, prefetch: { siblingFiles: 0, siblingBytes: 0, bulkAfterColdReads: 0 } } },
  });
  await commitTree(harness.repoDir('app.git'), generatedTree(600));
  return { harness, held, asked, release };
}

async function readRightAfterReady(harness: NodeHarness, target: string) {
  const published = await harness.publisher.publish({ repository: harness.url('app.git'), depth: 1, target });
  await published.preparation.gate.wait(30_000);
  const file = join(target, FILE);
  const [facts, bytes] = await Promise.all([stat(file), readFile(file, 'utf8')]);
  const expected = await git(['--git-dir', harness.repoDir('app.git'), 'show', `HEAD:${FILE}`]);
  assert.equal(bytes, expected);
  assert.equal(facts.size, Buffer.byteLength(expected));
  return published;
}

describe('a file read right after ready', () => {
  const stops: Array<() => Promise<void>> = [];
  after(async () => {
    for (const stop of stops) await stop();
  });

  test('gets its size and bytes while the tree-wide object-info is held back, and a stat of every file fetches no contents', async () => {
    const { harness, held, release } = await heldBack();
    stops.push(async () => (release(), await harness.stop()));
    const target = harness.target('first-byte');
    const published = await readRightAfterReady(harness, target);
    assert.deepEqual(held, ['object-info']);
    assert.equal(published.preparation.sizes.state, 'pending');
    assert.equal(harness.server.counters.fetches, 2, 'the trees, then that one blob');

    // Every file's size, each directory asked for at its first lookup, still without the tree's.
    const listing = await run('sh', ['-c', `cd '${target}' && find . -path ./.git -prune -o -type f -printf '%P %s\\n'`]);
    const served = (await git(['--git-dir', harness.repoDir('app.git'), '-c', 'core.quotePath=false', 'ls-tree', '-r', '-l', 'HEAD'])).split('\n').filter((line) => line.startsWith('100'));
    const want = served.map((line) => `${line.slice(line.indexOf('\t') + 1)} ${line.split(/\s+/)[3]}`).sort();
    assert.deepEqual(listing.stdout.split('\n').filter(Boolean).sort(), want);
    assert.equal(published.preparation.sizes.state, 'pending');
    assert.equal(harness.server.counters.fetches, 2, 'sizes came without contents');

    release();
    await published.preparation.sizes.wait(30_000);
    await harness.publisher.unpublish(target);
  });

  test('from a server without object-info, gets its size from its content while the tree-wide fetch is held back', async () => {
    const { harness, held, asked, release } = await heldBack({ hideObjectInfo: true });
    stops.push(async () => (release(), await harness.stop()));
    const target = harness.target('first-byte');
    const published = await readRightAfterReady(harness, target);
    assert.deepEqual(held, ['fetch']);
    assert.equal(published.preparation.sizes.state, 'pending');
    assert.deepEqual(asked.filter(([, oids]) => oids <= TREE_WIDE), [['fetch', 1], ['fetch', 1]], 'the trees, then that one blob');
    release();
    await published.preparation.sizes.wait(30_000);
    await harness.publisher.unpublish(target);
  });
});
