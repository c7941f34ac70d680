import assert from 'node:assert/strict';
import { access, stat } from 'node:fs/promises';
import { Stats } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { layersDirOf, viewsDirOf } from '../../src/config/nodeConfig';
import { statusOf } from '../../src/csi/statusOf';
import { NoSpace, OverlayUnavailable } from '../../src/errors/errors';
import { fuseDevice } from '../../src/fuse/fuseDevice';
import { viewDirFor } from '../../src/mount/gitView';
import { OVERLAY_FS_TYPE, readMountTable } from '../../src/mount/mountTable';
import { layerDirFor } from '../../src/mount/writableLayer';
import { NodeHarness, run } from '../support/nodeHarness';
import { commitTree, generatedTree, git, removeDir, tempDir } from '../support/repoFixtures';

const MiB = 1024 * 1024;

/** The same edits a build or a person makes in a checkout; run in a child process (this one serves the mount). */
const EDITS = `set -e
cd "$1"
echo new > new-file.txt
mkdir -p made/here && echo deep > made/here/file
echo appended >> README.md
truncate -s 5 package.json
mv src/mod1 src/renamed-mod1
rm src/mod2/pkg2/file2.txt
rm -r src/mod3
chmod 700 bin/run.sh
ln -s README.md link-to-readme
`;

/** Every path with its type, mode and size, and every file's content hash (sorted): two trees compare as text. */
const LISTING = `cd "$1" && find . -path ./.git -prune -o -printf '%p %y %m %s %l\\n' | sort && find . -path ./.git -prune -o -type f -print0 | sort -z | xargs -0 sha1sum`;

/** A file's stat once it exists (spares are made in the background), within 10 s. */
async function waitForFile(path: string): Promise<Stats> {
  for (let i = 0; i < 200; i++) {
    const found = await stat(path).catch(() => undefined);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${path} did not appear`);
}

async function sh(script: string, dir: string): Promise<string> {
  const result = await run('sh', ['-c', script, 'sh', dir]);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout;
}

describe('a writable volume', () => {
  let harness: NodeHarness;
  let clone: string;
  const url = () => harness.url('repo.git');

  before(async () => {
    harness = await NodeHarness.start();
    await commitTree(harness.repoDir('repo.git'), generatedTree(300));
    clone = join(await tempDir('clone'), 'checkout');
    await git(['clone', '-q', harness.repoDir('repo.git'), clone]);
  });
  after(async () => {
    await harness.stop();
    await removeDir(join(clone, '..'));
  });

  test('takes writes, appends, truncates, renames, deletes, chmods and symlinks as a clone does; another volume of the commit sees none', async () => {
    const target = harness.target('edited');
    const other = harness.target('untouched');
    await harness.publisher.publish({ repository: url(), target, writable: { limitBytes: 64 * MiB } });
    await harness.publisher.publish({ repository: url(), target: other });
    const before = await sh(LISTING, other);
    await sh(EDITS, target);
    await sh(EDITS, clone);
    assert.equal(await sh(LISTING, target), await sh(LISTING, clone));
    assert.equal(await sh(LISTING, other), before, 'the read-only volume of the same commit is unchanged');
    await harness.publisher.unpublish(target);
    await harness.publisher.unpublish(other);
  });

  test('a second writable volume of the commit starts from the commit, not from the first one\'s writes', async () => {
    const first = harness.target('first');
    const second = harness.target('second');
    await harness.publisher.publish({ repository: url(), target: first, writable: { limitBytes: 32 * MiB } });
    await harness.publisher.publish({ repository: url(), target: second, writable: { limitBytes: 32 * MiB } });
    await sh('echo mine > "$1/README.md" && rm "$1/package.json"', first);
    assert.equal(await sh('cat "$1/README.md" "$1/package.json"', second), '# generated fixture\n{"name":"fixture"}\n');
    await harness.publisher.unpublish(first);
    await harness.publisher.unpublish(second);
  });

  test('past its write limit the writer gets ENOSPC, and the volume and its neighbours keep working', async () => {
    const target = harness.target('limited');
    const neighbour = harness.target('neighbour');
    await harness.publisher.publish({ repository: url(), target, writable: { limitBytes: 16 * MiB } });
    await harness.publisher.publish({ repository: url(), target: neighbour, writable: { limitBytes: 16 * MiB } });
    const fill = await run('sh', ['-c', 'dd if=/dev/zero of="$1/fill" bs=1M count=64 2>&1', 'sh', target]);
    assert.notEqual(fill.code, 0);
    assert.match(fill.stdout, /No space left on device/);
    await sh('rm "$1/fill" && echo still > "$1/after.txt" && cat "$1/README.md" >/dev/null', target);
    await sh('dd if=/dev/zero of="$1/eight" bs=1M count=8 2>/dev/null', neighbour);
    await harness.publisher.unpublish(target);
    await harness.publisher.unpublish(neighbour);
  });

  test('a writable publish takes the formatted spare that the one before it left, and leaves another', async () => {
    const spare = join(layersDirOf(harness.config), 'spares', String(24 * MiB));
    const first = harness.target('spare-1');
    await harness.publisher.publish({ repository: url(), target: first, writable: { limitBytes: 24 * MiB } });
    const ready = await waitForFile(`${spare}.img`);
    const second = harness.target('spare-2');
    await harness.publisher.publish({ repository: url(), target: second, writable: { limitBytes: 24 * MiB } });
    assert.equal((await stat(join(layerDirFor(layersDirOf(harness.config), second), 'layer.img'))).ino, ready.ino);
    assert.notEqual((await waitForFile(`${spare}.img`)).ino, ready.ino, 'a new spare replaces it');
    await sh('echo fine > "$1/new.txt" && cat "$1/new.txt"', second);
    await harness.publisher.unpublish(first);
    await harness.publisher.unpublish(second);
  });

  test('unpublish takes the writes away and leaves no layer, mount or directory behind', async () => {
    const target = harness.target('gone');
    await harness.publisher.publish({ repository: url(), target, writable: { limitBytes: 16 * MiB } });
    await sh('echo x > "$1/written"', target);
    const layer = layerDirFor(layersDirOf(harness.config), target);
    await access(join(layer, 'layer.img'));
    await harness.publisher.unpublish(target, { removeDir: true });
    await assert.rejects(access(layer), { code: 'ENOENT' });
    await assert.rejects(access(target), { code: 'ENOENT' });
    const left = (await readMountTable()).filter((m) => m.mountPoint.startsWith(layer) || m.mountPoint === target);
    assert.deepEqual(left, []);
  });

  test('a restart of the node keeps the writes of a volume still published', async () => {
    const target = harness.target('kept');
    await harness.publisher.publish({ repository: url(), target, writable: { limitBytes: 16 * MiB } });
    await sh('echo kept > "$1/kept.txt"', target);
    const commit = (await git(['--git-dir', harness.repoDir('repo.git'), 'rev-parse', 'HEAD'])).trim();
    // No FUSE holder here: the tree mount dies with the node, and the restored volume is a new
    // overlay over the new tree mount with the same layer.
    await harness.restart({ keepPublications: true });
    await harness.publisher.restore({ repository: url(), target, commit, refName: 'HEAD', writable: { limitBytes: 16 * MiB } });
    assert.equal(await sh('cat "$1/kept.txt"', target), 'kept\n');
    await harness.publisher.unpublish(target, { removeDir: true });
  });
});

describe('a writable volume on a node whose disk cannot hold its layer', () => {
  let harness: NodeHarness;
  let small: string;

  before(async () => {
    // The state directory on a 48 MiB file system of its own: "the node's disk" for this node.
    small = await tempDir('small-disk');
    await run('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'small-disk', small]);
    harness = await NodeHarness.start({ config: { stateDir: join(small, 'state') } });
    await commitTree(harness.repoDir('repo.git'), generatedTree(50));
  });
  after(async () => {
    await harness.stop();
    await run('umount', [small]);
    await removeDir(small);
  });

  test('is refused as out of space, leaving nothing behind, and read-only volumes still publish', async () => {
    const target = harness.target('too-big');
    await assert.rejects(harness.publisher.publish({ repository: harness.url('repo.git'), target, writable: { limitBytes: 64 * MiB } }), (err: Error) => {
      assert.ok(err instanceof NoSpace, String(err));
      assert.match(err.message, /the node's disk cannot hold a writable layer of 67108864 bytes/);
      return true;
    });
    assert.deepEqual((await readMountTable()).filter((m) => m.mountPoint === target || m.mountPoint.startsWith(layersDirOf(harness.config))), []);
    await assert.rejects(access(layerDirFor(layersDirOf(harness.config), target)), { code: 'ENOENT' });
    const reader = harness.target('reader');
    await harness.publisher.publish({ repository: harness.url('repo.git'), target: reader });
    assert.equal(await sh('cat "$1/package.json"', reader), '{"name":"fixture"}\n');
    await harness.publisher.unpublish(target);
    await harness.publisher.unpublish(reader);
  });
});

describe('volumes on a node whose kernel has no overlayfs', () => {
  let harness: NodeHarness;
  let restore: () => void;

  before(async () => {
    // Such a kernel cannot be had here: mount(2) answers for overlayfs alone as it would there (ENODEV).
    const device = fuseDevice();
    const real = device.mountAsync;
    device.mountAsync = (source, target, fsType, flags, data) =>
      fsType === OVERLAY_FS_TYPE ? Promise.reject(Object.assign(new Error('no such device'), { code: 'ENODEV' })) : real.call(device, source, target, fsType, flags, data);
    restore = () => (device.mountAsync = real);
    harness = await NodeHarness.start();
    await commitTree(harness.repoDir('repo.git'), generatedTree(50));
  });
  after(async () => {
    await harness.stop();
    restore();
  });

  test('refuse writable and .git-less volumes with FAILED_PRECONDITION, leaving nothing behind, while read-only ones keep working', async () => {
    for (const [name, asked] of [['writable', { writable: { limitBytes: 64 * MiB } }], ['without-git', { git: false }]] as const) {
      const target = harness.target(name);
      await assert.rejects(harness.publisher.publish({ repository: harness.url('repo.git'), target, ...asked }), (err: Error) => {
        assert.ok(err instanceof OverlayUnavailable, String(err));
        assert.equal(statusOf(err), status.FAILED_PRECONDITION);
        assert.match(err.message, /no overlayfs, which writable volumes and volumes without \.git need; read-only volumes still work/);
        return true;
      });
      assert.deepEqual((await readMountTable()).filter((m) => m.mountPoint === target || m.mountPoint.startsWith(layersDirOf(harness.config))), [], name);
      await assert.rejects(access(layerDirFor(layersDirOf(harness.config), target)), { code: 'ENOENT' });
      await assert.rejects(access(viewDirFor(viewsDirOf(harness.config), target)), { code: 'ENOENT' });
    }
    const reader = harness.target('reader');
    await harness.publisher.publish({ repository: harness.url('repo.git'), target: reader });
    assert.equal(await sh('cat "$1/package.json"', reader), '{"name":"fixture"}\n');
    const commit = (await git(['--git-dir', harness.repoDir('repo.git'), 'rev-parse', 'HEAD'])).trim();
    assert.equal((await sh('git -C "$1" rev-parse HEAD', reader)).trim(), commit, 'the tree\'s own .git, HEAD at the commit');
    await harness.publisher.unpublish(reader);
  });
});
