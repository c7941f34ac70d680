import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BlobTooLarge } from '../../src/errors/errors';
import { PackObject, PackParser } from '../../src/git/packParser';
import { commitSimilarPair, packOfAll, removeDir, storedObjects, tempDir } from '../support/repoFixtures';

let dir: string;
let repo: string;
/** Every object of the fixture's two commits, by id, as `git cat-file --batch-all-objects` lists them. */
let expected: Map<string, string>;

before(async () => {
  dir = await tempDir('pack-parser');
  repo = join(dir, 'repo.git');
  await commitSimilarPair(repo, 300, 3);
  expected = new Map((await storedObjects(repo)).map((o) => [o.oid, o.type]));
});
after(() => removeDir(dir));

async function parse(pack: Buffer, chunkSize: number, options: { blobBaseBudget?: number; loadBlob?: (oid: string) => Promise<Buffer> } = {}): Promise<PackObject[]> {
  const objects: PackObject[] = [];
  const parser = new PackParser({ objectFormat: 'sha1', onObject: (o) => void objects.push(o), ...options });
  for (let at = 0; at < pack.length; at += chunkSize) await parser.push(pack.subarray(at, at + chunkSize));
  await parser.end();
  return objects;
}

async function assertAllObjects(objects: PackObject[]): Promise<void> {
  assert.equal(objects.length, expected.size);
  for (const object of objects) assert.equal(expected.get(object.oid), object.kind, `${object.oid} is a ${object.kind} of the repository`);
  // Content as git itself has it, for a sample of every kind.
  for (const object of objects.filter((_, i) => i % 37 === 0)) {
    const content = await new Promise<Buffer>((resolve, reject) =>
      execFile('git', ['--git-dir', repo, 'cat-file', object.kind, object.oid], { encoding: 'buffer', maxBuffer: 1 << 26 }, (err, out) => (err ? reject(err) : resolve(out))),
    );
    assert.ok(content.equals(object.data), `content of ${object.oid}`);
  }
}

test('a pack with offset deltas parses to every object of the repository, whatever the chunk sizes', async () => {
  const pack = await packOfAll(repo, ['--delta-base-offset']);
  for (const chunkSize of [1, 7, 4096, 1 << 20]) await assertAllObjects(await parse(pack, chunkSize));
});

test('a pack with deltas naming their bases by id parses too', async () => {
  await assertAllObjects(await parse(await packOfAll(repo), 1000));
});

test('blob bases dropped under a memory budget are loaded back for the deltas that need them', async () => {
  const pack = await packOfAll(repo, ['--delta-base-offset']);
  const seen = new Map<string, Buffer>();
  const loaded: string[] = [];
  const objects: PackObject[] = [];
  const parser = new PackParser({
    objectFormat: 'sha1',
    onObject: (o) => {
      objects.push(o);
      if (o.kind === 'blob') seen.set(o.oid, o.data);
    },
    blobBaseBudget: 1,
    loadBlob: async (oid) => {
      loaded.push(oid);
      return seen.get(oid)!;
    },
  });
  for (let at = 0; at < pack.length; at += 8192) await parser.push(pack.subarray(at, at + 8192));
  await parser.end();
  await assertAllObjects(objects);
  assert.ok(loaded.length > 0, 'some blob deltas needed a dropped base');
});

test('an object larger than the parser takes stops it at its header, its size said, before its content has come', async () => {
  const pack = await packOfAll(repo, ['--delta-base-offset']);
  const [first] = await parse(pack, 1 << 20);
  const parser = new PackParser({ objectFormat: 'sha1', onObject: () => assert.fail('no object is taken'), maxObjectBytes: first.data.length - 1 });
  // The pack's header and the first entry's type and size, nothing of its compressed content.
  const rejected = await parser.push(pack.subarray(0, 12 + 4)).then(() => undefined, (err: unknown) => err);
  assert.ok(rejected instanceof BlobTooLarge, String(rejected));
  assert.equal(rejected.size, first.data.length);
});

test('a damaged or truncated pack is refused, never parsed into wrong objects', async () => {
  const pack = await packOfAll(repo, ['--delta-base-offset']);
  const damaged = Buffer.from(pack);
  damaged[Math.floor(pack.length / 2)] ^= 0xff;
  await assert.rejects(parse(damaged, 65536), (err: Error & { kind?: string }) => err.kind === 'transient' && /corrupt/.test(err.message));
  await assert.rejects(parse(pack.subarray(0, pack.length - 100), 65536), /corrupt: the pack ended inside entry/);
  const wrongSum = Buffer.from(pack);
  wrongSum[pack.length - 1] ^= 1;
  await assert.rejects(parse(wrongSum, 65536), /checksum does not match/);
  await assert.rejects(parse(Buffer.from('NOPE0000000000000000'), 4), /does not start with "PACK"/);
});
