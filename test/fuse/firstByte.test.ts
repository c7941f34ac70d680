import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { commitTree, generatedTree, git } from '../support/repoFixtures';
import { NodeHarness, run } from '../support/nodeHarness';
import { ServerOptions } from '../support/gitHttpServer';
import { DEFAULT_FILESYSTEM_OPTIONS } from '../../src/fuse/treeFilesystem';
import { DEFAULT_LIMITS, HydratorLimits } from '../../src/hydrate/hydrator';

// Requests for the whole tree's blobs are held back; one entry's ask for its directory's, a read's for one blob.
const TREE_WIDE = 100;
const FILE = 'src/mod10/pkg3/file10.go';

/** A node whose server holds every request for the tree's sizes (object-info, or the blobs without it) until released. */
async function heldBack(server: ServerOptions = {}, hydrator: Partial<HydratorLimits> = {}, alsoHold?: ServerOptions['hold']) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const held: string[] = [];
  const asked: Array<[string, number]> = [];
  // The tree-wide request may reach the server after the read is served: it is awaited, not assumed.
  let firstHeld!: (request: string) => void;
  const tree = new Promise<string>((resolve) => (firstHeld = resolve));
  const hold = (request: 'object-info' | 'fetch', oids: number) => {
    asked.push([request, oids]);
    if (oids <= TREE_WIDE) return alsoHold?.(request, oids);
    held.push(request);
    firstHeld(request);
    return released;
  };
  const harness = await NodeHarness.start({
    server: { ...server, hold },
    // Nothing is fetched beyond what is read, so that the fetches counted are the reads'.
    config: { filesystem: { ...DEFAULT_FILESYSTEM_OPTIONS, prefetch: { siblingFiles: 0, siblingBytes: 0, bulkAfterColdReads: 0 } }, hydrator: { ...DEFAULT_LIMITS, ...hydrator } },
  });
  await commitTree(harness.repoDir('app.git'), generatedTree(600));
  return { harness, held, asked, release, tree };
}

async function readRightAfterReady(harness: NodeHarness, target: string, path = FILE) {
  const published = await harness.publisher.publish({ repository: harness.url('app.git'), depth: 1, target });
  await published.preparation.gate.wait(30_000);
  const file = join(target, path);
  const [facts, bytes] = await Promise.all([stat(file), readFile(file, 'utf8')]);
  const expected = await git(['--git-dir', harness.repoDir('app.git'), 'show', `HEAD:${path}`]);
  assert.equal(bytes, expected);
  assert.equal(facts.size, Buffer.byteLength(expected));
  return published;
}

const LARGE = 'assets/large.bin';
const oidOf = async (harness: NodeHarness, path: string) => (await git(['--git-dir', harness.repoDir('app.git'), 'rev-parse', `HEAD:${path}`])).trim();

describe('a file read right after ready', () => {
  const stops: Array<() => Promise<void>> = [];
  after(async () => {
    for (const stop of stops) await stop();
  });

  test('gets its size and bytes while the tree-wide object-info is held back, and a stat of every file fetches no contents', async () => {
    const { harness, held, release, tree } = await heldBack();
    stops.push(async () => (release(), await harness.stop()));
    const target = harness.target('first-byte');
    const published = await readRightAfterReady(harness, target);
    assert.equal(await tree, 'object-info');
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

  test('a file looked up alone right after ready costs the server its blob, and no size request beside it', async () => {
    const { harness, asked, release } = await heldBack();
    stops.push(async () => (release(), await harness.stop()));
    const target = harness.target('first-byte');
    const published = await harness.publisher.publish({ repository: harness.url('app.git'), depth: 1, target });
    await published.preparation.gate.wait(30_000);
    const expected = await git(['--git-dir', harness.repoDir('app.git'), 'show', `HEAD:${FILE}`]);
    assert.equal(await readFile(join(target, FILE), 'utf8'), expected);
    assert.deepEqual(asked.filter(([, oids]) => oids <= TREE_WIDE), [['fetch', 1], ['fetch', 1]], 'the trees, then that one blob');
    release();
    await published.preparation.sizes.wait(30_000);
    await harness.publisher.unpublish(target);
  });

  test('files looked up while that blob is on its way have their sizes asked for with their neighbours, not fetched', async () => {
    let armed = false;
    let blobAsked!: () => void;
    const blobOut = new Promise<void>((resolve) => (blobAsked = resolve));
    let releaseBlob!: () => void;
    const blobHeld = new Promise<void>((resolve) => (releaseBlob = resolve));
    const holdBlob = (request: 'object-info' | 'fetch', oids: number) => {
      if (!armed || request !== 'fetch' || oids !== 1) return undefined;
      blobAsked();
      return blobHeld;
    };
    const { harness, asked, release } = await heldBack({}, {}, holdBlob);
    stops.push(async () => (releaseBlob(), release(), await harness.stop()));
    const target = harness.target('first-byte');
    const published = await harness.publisher.publish({ repository: harness.url('app.git'), depth: 1, target });
    await published.preparation.gate.wait(30_000);
    armed = true;
    const before = asked.length;
    const read = readFile(join(target, FILE), 'utf8');
    await blobOut;
    // Three files of another directory than the one being read.
    const listed = await git(['--git-dir', harness.repoDir('app.git'), 'ls-tree', '-r', '-l', 'HEAD']);
    const byDir = new Map<string, Array<{ path: string; size: number }>>();
    for (const line of listed.split('\n').filter((l) => l.startsWith('100'))) {
      const path = line.slice(line.indexOf('\t') + 1);
      const dir = path.slice(0, path.lastIndexOf('/') + 1);
      byDir.set(dir, [...(byDir.get(dir) ?? []), { path, size: Number(line.split(/\s+/)[3]) }]);
    }
    const files = [...byDir].find(([dir, inDir]) => !FILE.startsWith(dir) && inDir.length >= 3)![1].slice(0, 3);
    const sizes = await Promise.all(files.map((file) => stat(join(target, file.path)).then((s) => s.size)));
    assert.deepEqual(sizes, files.map((file) => file.size));
    const since = asked.slice(before);
    assert.deepEqual(since.filter(([request]) => request === 'fetch'), [['fetch', 1]], 'the looked-up blob alone');
    assert.ok(since.some(([request, oids]) => request === 'object-info' && oids <= TREE_WIDE), 'the others asked for by size');
    releaseBlob();
    assert.equal(await read, await git(['--git-dir', harness.repoDir('app.git'), 'show', `HEAD:${FILE}`]));
    release();
    await published.preparation.sizes.wait(30_000);
    await harness.publisher.unpublish(target);
  });

  test('a large file looked up alone right after ready is not fetched: its size comes from its pack header', async () => {
    const { harness, release } = await heldBack();
    stops.push(async () => (release(), await harness.stop()));
    const target = harness.target('first-byte');
    const published = await harness.publisher.publish({ repository: harness.url('app.git'), depth: 1, target });
    await published.preparation.gate.wait(30_000);
    const oid = await oidOf(harness, LARGE);
    assert.equal((await stat(join(target, LARGE))).size, 3 * 1024 * 1024 + 17);
    assert.equal(harness.server.counters.wants.get(oid), 1, 'asked for at the lookup');
    assert.equal(harness.node.hydrator.cache.has(oid), false, 'a stat leaves it uncached');
    const expected = await git(['--git-dir', harness.repoDir('app.git'), 'show', `HEAD:${LARGE}`]);
    assert.equal(await readFile(join(target, LARGE), 'utf8'), expected);
    assert.equal(harness.server.counters.wants.get(oid), 2, 'then by its read');
    release();
    await published.preparation.sizes.wait(30_000);
    await harness.publisher.unpublish(target);
  });

  test('a file larger than the node holds whole, read right after ready, comes through local storage', async () => {
    const { harness, release, tree } = await heldBack({}, { maxHeldBlobBytes: 1 << 20 });
    stops.push(async () => (release(), await harness.stop()));
    const target = harness.target('first-byte');
    const published = await readRightAfterReady(harness, target, LARGE);
    const oid = await oidOf(harness, LARGE);
    assert.equal(await tree, 'object-info');
    assert.equal(published.preparation.sizes.state, 'pending');
    assert.equal(harness.server.counters.wants.get(oid), 2, 'asked for at the lookup, then by git');
    assert.equal(harness.node.hydrator.cache.has(oid), true);
    release();
    await published.preparation.sizes.wait(30_000);
    await harness.publisher.unpublish(target);
  });

  test('a file over --max-blob-bytes looked up alone right after ready has its size, reads as EFBIG, and is never cached', async () => {
    const { harness, release } = await heldBack({}, { maxBlobBytes: 1 << 20 });
    stops.push(async () => (release(), await harness.stop()));
    const target = harness.target('first-byte');
    const published = await harness.publisher.publish({ repository: harness.url('app.git'), depth: 1, target });
    await published.preparation.gate.wait(30_000);
    const file = join(target, LARGE);
    const [facts, read] = await Promise.all([stat(file), readFile(file).then(() => 'read', (err: NodeJS.ErrnoException) => err.code)]);
    assert.equal(facts.size, 3 * 1024 * 1024 + 17);
    assert.equal(read, 'EFBIG');
    assert.equal(harness.node.hydrator.cache.has(await oidOf(harness, LARGE)), false);
    release();
    await published.preparation.sizes.wait(30_000);
    await harness.publisher.unpublish(target);
  });

  test('from a server without object-info, gets its size from its content while the tree-wide fetch is held back', async () => {
    const { harness, held, asked, release, tree } = await heldBack({ hideObjectInfo: true });
    stops.push(async () => (release(), await harness.stop()));
    const target = harness.target('first-byte');
    const published = await readRightAfterReady(harness, target);
    assert.equal(await tree, 'fetch');
    assert.deepEqual(held, ['fetch']);
    assert.equal(published.preparation.sizes.state, 'pending');
    assert.deepEqual(asked.filter(([, oids]) => oids <= TREE_WIDE), [['fetch', 1], ['fetch', 1]], 'the trees, then that one blob');
    release();
    await published.preparation.sizes.wait(30_000);
    await harness.publisher.unpublish(target);
  });
});
