import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseCommit } from '../../src/git/commitObject';
import { PackObject, PackParser } from '../../src/git/packParser';
import { TreeIndex } from '../../src/tree/treeIndex';
import { buildTreeIndex } from '../../src/tree/treeIndexBuilder';
import { TreeObjectsIndexer } from '../../src/tree/treeObjectsIndex';
import { commitTree, generatedTree, removeDir, tempDir } from '../support/repoFixtures';

let dir: string;
let repo: string;
let commit: string;
let objects: PackObject[];

before(async () => {
  dir = await tempDir('tree-objects');
  repo = join(dir, 'repo.git');
  // A directory shared twice (same tree id under two names), and "lib" beside "lib.c" (git's order is not ours).
  const entries = [...generatedTree(400, 5), { path: 'copy-a/same.txt', content: 'same\n' }, { path: 'copy-b/same.txt', content: 'same\n' }, { path: 'lib.c', content: 'c\n' }, { path: 'lib/x', content: 'x\n' }];
  commit = await commitTree(repo, entries);
  const pack = await new Promise<Buffer>((resolve, reject) => {
    const child = execFile('git', ['--git-dir', repo, 'pack-objects', '--stdout', '--revs', '--filter=blob:none', '--delta-base-offset'], { encoding: 'buffer', maxBuffer: 1 << 26 }, (err, out) => (err ? reject(err) : resolve(out)));
    child.stdin!.end(`${commit}\n`);
  });
  objects = [];
  const parser = new PackParser({ objectFormat: 'sha1', onObject: (o) => void objects.push(o) });
  await parser.push(pack);
  await parser.end();
});
after(() => removeDir(dir));

/** Every entry as "path kind oid", in a stable order: what two indexes of one tree must agree on. */
function entriesOf(index: TreeIndex): string[] {
  const paths = new Map<number, string>([[0, '']]);
  const lines: string[] = [];
  for (let e = 1; e < index.count; e++) {
    const path = `${paths.get(index.parents[e])}/${index.name(e)}`;
    paths.set(e, path);
    lines.push(`${path} ${index.kind(e)} ${index.oid(e)}`);
  }
  return lines.sort();
}

function indexFrom(order: PackObject[]): TreeIndex {
  const indexer = new TreeObjectsIndexer(commit);
  for (const object of order) {
    if (object.kind === 'tree') indexer.addTree(object.oid, object.data);
    else if (object.kind === 'commit') indexer.setRoot(parseCommit(commit, object.data.toString()).tree);
  }
  return indexer.finish();
}

async function fromListing(): Promise<TreeIndex> {
  const child = execFile('git', ['--git-dir', repo, 'ls-tree', '-r', '-t', '-z', '--full-tree', commit], { encoding: 'buffer' });
  return buildTreeIndex(child.stdout!, commit);
}

/** Every entry as "number path kind oid", in entry order: the numbers are inode numbers, so they must agree too. */
function numberedEntriesOf(index: TreeIndex): string[] {
  return Array.from({ length: index.count }, (_, e) => `${e} ${index.pathOf(e)} ${index.kind(e)} ${index.oid(e)}`);
}

test('trees indexed from a pack agree entry for entry, and number for number, with the ls-tree listing of the commit', async () => {
  const listed = await fromListing();
  const received = indexFrom(objects);
  assert.equal(received.count, listed.count);
  assert.deepEqual(entriesOf(received), entriesOf(listed));
  // Entry numbers are inode numbers: a successor process that lists the tree answers the same ones.
  assert.deepEqual(numberedEntriesOf(received), numberedEntriesOf(listed));
  assert.deepEqual(numberedEntriesOf(indexFrom([...objects].reverse())), numberedEntriesOf(listed));
  // Lookups by name work on both: children are in our order even where git's differs.
  for (const index of [received, listed]) assert.ok(index.lookup('lib') > 0 && index.lookup('lib.c') > 0 && index.lookup('lib/x') > 0);
  // One tree object under two names is indexed under both.
  const copies = entriesOf(received).filter((l) => l.includes('/same.txt'));
  assert.deepEqual(copies.map((l) => l.split(' ')[0]), ['/copy-a/same.txt', '/copy-b/same.txt']);
});

test('the order trees arrive in does not matter, the commit last included', async () => {
  const expected = entriesOf(indexFrom(objects));
  const reversed = [...objects].reverse();
  let state = 9;
  const shuffled = [...objects].sort(() => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5);
  assert.deepEqual(entriesOf(indexFrom(reversed)), expected);
  assert.deepEqual(entriesOf(indexFrom(shuffled)), expected);
});

test('a tree missing from the pack, or no commit at all, is an error rather than a partial index', () => {
  const withoutOneTree = objects.filter((o, i) => !(o.kind === 'tree' && i === objects.length - 1));
  assert.throws(() => indexFrom(withoutOneTree), /was not in the pack/);
  assert.throws(() => indexFrom(objects.filter((o) => o.kind !== 'commit')), /commit .* was not in the pack/);
});
