import assert from 'node:assert/strict';
import { mkdir, readdir } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { SegmentAppender } from '../../src/cache/segmentAppender';
import { segmentsDirOf } from '../../src/cache/segmentLayout';
import { SegmentReader } from '../../src/cache/segmentReader';
import { BlobLocation, ServableBlobs } from '../../src/cache/servableBlobs';
import { removeDir, tempDir } from '../support/repoFixtures';

let dir: string;
before(async () => (dir = await tempDir('segments')));
after(() => removeDir(dir));

const openFiles = async () => (await readdir('/proc/self/fd')).length;

test('a thread keeps a bounded number of segment files open, and reads from any segment', async () => {
  await mkdir(segmentsDirOf(dir), { recursive: true });
  const servable = ServableBlobs.allocate(dir, 1024);
  const appender = new SegmentAppender(servable, 1, () => undefined); // a segment per record
  const written: BlobLocation[] = [];
  for (let i = 0; i < 400; i++) {
    const content = Buffer.from(`blob ${i}`);
    written.push(appender.appendSync(i.toString(16).padStart(40, '0'), content));
  }
  appender.seal();
  assert.equal((await readdir(segmentsDirOf(dir))).filter((name) => !name.endsWith('.idx')).length, 400);

  const reader = new SegmentReader(servable);
  const before = await openFiles();
  const out = Buffer.alloc(64);
  for (let round = 0; round < 2; round++) {
    for (const [i, at] of written.entries()) {
      const read = reader.readAt(at, 0, out.length, out, 0);
      assert.equal(out.toString('utf8', 0, read), `blob ${i}`);
    }
  }
  const held = (await openFiles()) - before;
  assert.ok(held <= 256, `${held} segment files held open`);
  // A removal tells every reader to let go of what it holds.
  servable.segmentsRemoved();
  assert.equal(reader.readAt(written[0], 5, 10, out, 0), 1);
  assert.equal((await openFiles()) - before, 1);
});
