import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import type { ContentReader } from '../../src/cache/blobCache';
import { adler32Of, looseObjectSize, objectHeader, readLooseObject } from '../../src/gitdir/looseObject';
import { git, removeDir, tempDir } from '../support/repoFixtures';

let dir: string;
before(async () => (dir = await tempDir('looseobject')));
after(() => removeDir(dir));

function patterned(length: number): Buffer {
  const content = Buffer.alloc(length);
  for (let i = 0; i < length; i++) content[i] = (i * 7919 + (i >> 9)) & 0xff;
  return content;
}

/** The whole loose object of `content`, made as the server makes it: range by range, in pieces of `piece` bytes. */
function looseObject(content: Buffer, piece = 1 << 20): Buffer {
  const read: ContentReader = (offset, length, into, at) => void content.copy(into, at, offset, offset + length);
  const adler = adler32Of(content.length, read);
  const out = Buffer.alloc(looseObjectSize(content.length));
  for (let position = 0; position < out.length; position += piece) {
    assert.equal(readLooseObject(content.length, adler, read, position, piece, out, position), Math.min(piece, out.length - position));
  }
  return out;
}

// Around the edges of one stored block (65,535 bytes of header and content), and several blocks.
const SIZES = [0, 1, 100, 65_535 - 'blob 65526\0'.length, 65_535 - 'blob 65527\0'.length, 65_535, 200_000, 1 << 20];

test('a loose object has the size its content size predicts, inflates to the object, and is the same read in any pieces', () => {
  for (const size of SIZES) {
    const content = patterned(size);
    const file = looseObject(content);
    assert.equal(file.length, looseObjectSize(size), `size ${size}`);
    assert.ok(inflateSync(file).equals(Buffer.concat([objectHeader('blob', size), content])), `size ${size}`);
    // Pieces that start and end inside block headers, the object header and the trailer.
    for (const piece of [1, 3, 4096, 65_537]) if (size <= 200_000 || piece > 1) assert.ok(looseObject(content, piece).equals(file), `size ${size}, pieces of ${piece}`);
  }
});

test('git reads and verifies the loose objects it finds (cat-file, fsck)', async () => {
  const repo = join(dir, 'repo.git');
  await git(['init', '-q', '--bare', repo]);
  const expected = new Map<string, Buffer>();
  for (const size of SIZES) {
    const content = patterned(size);
    const source = join(dir, `content-${size}`);
    await writeFile(source, content);
    const oid = (await git(['--git-dir', repo, 'hash-object', source])).trim();
    await mkdir(join(repo, 'objects', oid.slice(0, 2)), { recursive: true });
    await writeFile(join(repo, 'objects', oid.slice(0, 2), oid.slice(2)), looseObject(content));
    expected.set(oid, content);
  }
  for (const [oid, content] of expected) {
    assert.equal((await git(['--git-dir', repo, 'cat-file', '-s', oid])).trim(), String(content.length));
    const shown = execFileSync('git', ['--git-dir', repo, 'cat-file', 'blob', oid], { maxBuffer: 4 << 20 });
    assert.ok(shown.equals(content), `content of ${oid}`);
  }
  // fsck inflates every loose object, checks its trailer and rehashes it.
  const fsck = await git(['--git-dir', repo, 'fsck', '--strict', '--no-dangling']);
  assert.equal(fsck.trim(), '');
});
