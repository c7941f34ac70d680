import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { BlobCache } from '../../src/cache/blobCache';
import { BlobTooLarge, ObjectMissing } from '../../src/errors/errors';
import { BlobReceiver, BlobSource, Priority } from '../../src/hydrate/blobSource';
import { DEFAULT_LIMITS, Hydrator } from '../../src/hydrate/hydrator';
import { removeDir, tempDir } from '../support/repoFixtures';

/**
 * A source whose fetches wait until the test releases them: the only way to force the
 * interleavings below (a queued prefetch, a batch in flight). Everything else is real.
 */
class ControlledSource implements BlobSource {
  readonly key = 'controlled';
  readonly fetches: string[][] = [];
  private local = new Set<string>();
  private release: (() => void) | undefined;
  private gate: Promise<void> = Promise.resolve();
  constructor(private readonly contents: Map<string, Buffer>) {}
  hold(): void {
    this.gate = new Promise((resolve) => (this.release = resolve));
  }
  open(): void {
    this.release?.();
  }
  async fetch(oids: string[]): Promise<void> {
    this.fetches.push(oids);
    await this.gate;
    for (const oid of oids) this.local.add(oid);
  }
  async fetchEverything(): Promise<void> {
    await this.fetch([...this.contents.keys()]);
  }
  async extract(oid: string, sink: { start(size: number): void; data(chunk: Buffer): void | Promise<void> }): Promise<number> {
    const content = this.contents.get(oid)!;
    if (!this.local.has(oid)) throw new ObjectMissing(oid);
    sink.start(content.length);
    await sink.data(content);
    return content.length;
  }
}

function blobId(content: Buffer): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}

function blobs(count: number): Map<string, Buffer> {
  const map = new Map<string, Buffer>();
  for (let i = 0; i < count; i++) {
    const content = Buffer.from(`blob number ${i}\n`);
    map.set(blobId(content), content);
  }
  return map;
}

let dir: string;
before(async () => (dir = await tempDir('hydrate')));
after(() => removeDir(dir));

test('concurrent requests for one blob share one fetch', async () => {
  const contents = blobs(1);
  const source = new ControlledSource(contents);
  const hydrator = new Hydrator(await BlobCache.open(`${dir}/a`, 1 << 20));
  const [oid] = contents.keys();
  await Promise.all(Array.from({ length: 50 }, () => hydrator.hydrate(source, oid, Priority.Read)));
  assert.equal(source.fetches.length, 1);
  assert.equal(hydrator.cache.has(oid), true);
});

test('blobs requested close together are fetched in one round trip', async () => {
  const contents = blobs(500);
  const source = new ControlledSource(contents);
  const hydrator = new Hydrator(await BlobCache.open(`${dir}/b`, 1 << 20));
  await Promise.all([...contents.keys()].map((oid) => hydrator.hydrate(source, oid, Priority.Source)));
  assert.equal(source.fetches.length, 1);
  assert.equal(source.fetches[0].length, 500);
  assert.equal(hydrator.stats().blobsHydrated, 500);
});

test('a read promotes a queued prefetch ahead of other queued work', async () => {
  const contents = blobs(4);
  const [busy, low1, low2, wanted] = contents.keys();
  const source = new ControlledSource(contents);
  const hydrator = new Hydrator(await BlobCache.open(`${dir}/c`, 1 << 20), { ...DEFAULT_LIMITS, maxConcurrentFetches: 1, maxBatchObjects: 1, maxBatchBytes: 1 << 20, batchWindowMs: 1 });
  source.hold();
  const first = hydrator.hydrate(source, busy, Priority.Read); // occupies the only fetch slot
  await new Promise((resolve) => setTimeout(resolve, 10));
  const queued = [hydrator.hydrate(source, low1, Priority.Binary), hydrator.hydrate(source, low2, Priority.Binary), hydrator.hydrate(source, wanted, Priority.Background)];
  const read = hydrator.hydrate(source, wanted, Priority.Read);
  assert.equal(hydrator.stats().queued, 3);
  source.open();
  await Promise.all([first, read, ...queued]);
  assert.deepEqual(source.fetches.map((f) => f[0]), [busy, wanted, low1, low2]);
});

test('a failed fetch fails its waiters, and the next request tries again', async () => {
  const contents = blobs(1);
  const [oid] = contents.keys();
  const source = new ControlledSource(contents);
  const hydrator = new Hydrator(await BlobCache.open(`${dir}/d`, 1 << 20));
  const gone = async () => Promise.reject(new Error('server gone'));
  const failing: BlobSource = { key: 'failing', fetch: gone, fetchEverything: gone, extract: (o, s) => source.extract(o, s) };
  await assert.rejects(hydrator.hydrate(failing, oid, Priority.Read), /server gone/);
  assert.equal(hydrator.isPending(oid), false);
  await hydrator.hydrate(source, oid, Priority.Read);
  assert.equal(hydrator.cache.has(oid), true);
});

test('a whole-tree prefetch is one transfer, then every blob comes from local storage', async () => {
  const contents = blobs(300);
  const source = new ControlledSource(contents);
  const hydrator = new Hydrator(await BlobCache.open(`${dir}/e`, 1 << 20));
  await hydrator.prefetchTree(source, [...contents.entries()].map(([oid, c]) => ({ oid, size: c.length })));
  await Promise.all([...contents.keys()].map((oid) => hydrator.hydrate(source, oid, Priority.Read)));
  assert.equal(source.fetches.length, 1);
  assert.equal(hydrator.stats().blobsHydrated, 300);
});

/** A source whose whole-tree transfer streams blobs to the receiver one at a time, each when the test says. */
class StreamingSource extends ControlledSource {
  private credit = 0;
  private wake: (() => void) | undefined;
  constructor(private readonly all: Map<string, Buffer>) {
    super(all);
  }
  /** Lets the transfer deliver `count` more blobs. */
  allow(count: number): void {
    this.credit += count;
    this.wake?.();
  }
  override async fetchEverything(receiver?: BlobReceiver): Promise<void> {
    for (const [oid, content] of this.all) {
      while (this.credit === 0) await new Promise<void>((resolve) => (this.wake = resolve));
      this.credit--;
      await receiver!.deliver(oid, content);
    }
  }
}

test('a reader of one blob of a streaming whole-tree transfer gets it as it arrives, and queued fetches of its blobs join the transfer', async () => {
  const contents = blobs(20);
  const oids = [...contents.keys()];
  const source = new StreamingSource(contents);
  const hydrator = new Hydrator(await BlobCache.open(`${dir}/f`, 1 << 20), { ...DEFAULT_LIMITS, maxConcurrentFetches: 1, maxBatchObjects: 1, maxBatchBytes: 1 << 20, batchWindowMs: 1 });
  source.hold();
  const busy = hydrator.hydrate(source, oids[19], Priority.Read); // a fetch by id in flight, held
  await new Promise((resolve) => setTimeout(resolve, 10));
  const queued = hydrator.hydrate(source, oids[10], Priority.Source); // queued behind it, by id
  const transfer = hydrator.prefetchTree(source, oids.map((oid) => ({ oid, size: contents.get(oid)!.length })));
  const third = hydrator.hydrate(source, oids[2], Priority.Read);
  let thirdDone = false;
  void third.then(() => (thirdDone = true));
  source.allow(2);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(thirdDone, false, 'the third blob has not arrived yet');
  source.allow(1);
  await third;
  assert.equal(hydrator.cache.has(oids[2]), true);
  assert.equal(hydrator.cache.has(oids[3]), false, 'released as soon as its blob arrived, while the rest is still to come');
  source.allow(17);
  source.open();
  await Promise.all([transfer, queued, busy]);
  assert.deepEqual(source.fetches, [[oids[19]]], 'the queued fetch by id joined the transfer');
  assert.equal(hydrator.stats().blobsHydrated, 20);
});

/** A source that streams a fetch by id to its receiver, stopping as a pack header over the receiver's largest would. */
class HeaderStoppingSource extends ControlledSource {
  constructor(private readonly served: Map<string, Buffer>) {
    super(served);
  }
  override async fetch(oids: string[], receiver?: BlobReceiver): Promise<void> {
    if (!receiver) return super.fetch(oids);
    this.fetches.push(oids);
    await new Promise((resolve) => setTimeout(resolve, 5));
    for (const oid of oids) {
      const content = this.served.get(oid)!;
      if (content.length > receiver.largest) throw new BlobTooLarge(content.length, receiver.largest);
      await receiver.deliver(oid, content);
    }
  }
}

test('a blob only a lookup wants is fetched when small; a larger one stops at its size unless a reader joins, who gets it whole', async () => {
  const contents = blobs(1);
  const [small] = contents.keys();
  const [large, later] = [1, 2].map((fill) => {
    const content = Buffer.alloc(5000, fill);
    const oid = blobId(content);
    contents.set(oid, content);
    return oid;
  });
  const source = new HeaderStoppingSource(contents);
  const hydrator = new Hydrator(await BlobCache.open(`${dir}/g`, 1 << 20));

  await hydrator.hydrateIfSmall(source, small, 1000);
  assert.equal(hydrator.cache.has(small), true);
  const declined = await hydrator.hydrateIfSmall(source, large, 1000).then(() => undefined, (err: unknown) => err);
  assert.ok(declined instanceof BlobTooLarge, String(declined));
  assert.equal(declined.size, 5000);
  assert.equal(hydrator.cache.has(large), false);
  assert.equal(hydrator.stats().failures, 0);
  assert.equal(hydrator.isPending(large), false);

  // A reader joining before the fetch goes out has it streamed whole; one joining after, from local storage.
  await Promise.all([hydrator.hydrateIfSmall(source, large, 1000), hydrator.hydrate(source, large, Priority.Read)]);
  assert.deepEqual(source.fetches.slice(2), [[large]]);
  const looked = hydrator.hydrateIfSmall(source, later, 1000);
  while (source.fetches.length < 4) await new Promise((resolve) => setTimeout(resolve, 1));
  await Promise.all([looked, hydrator.hydrate(source, later, Priority.Read)]);
  assert.equal(hydrator.cache.has(later), true);
  assert.deepEqual(source.fetches.slice(3), [[later], [later]], 'stopped at its header, then through local storage');
});

test('a blob only a lookup wants goes out alone, not in a batch with reads', async () => {
  const contents = blobs(2);
  const [busy, read] = contents.keys();
  const content = Buffer.alloc(5000, 3);
  const large = blobId(content);
  contents.set(large, content);
  const source = new HeaderStoppingSource(contents);
  const hydrator = new Hydrator(await BlobCache.open(`${dir}/h`, 1 << 20));
  const first = hydrator.hydrate(source, busy, Priority.Read); // out at once: the others queue behind it
  const looked = hydrator.hydrateIfSmall(source, large, 1000).then(() => undefined, (err: unknown) => err);
  await Promise.all([first, hydrator.hydrate(source, read, Priority.Read)]);
  assert.ok((await looked) instanceof BlobTooLarge);
  assert.equal(hydrator.cache.has(large), false);
  assert.deepEqual(source.fetches, [[busy], [large], [read]]);
});
