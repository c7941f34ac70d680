import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { detachAll, mountsAt } from '../../src/mount/mountTable';
import { removeDir, tempDir } from '../support/repoFixtures';
import { run } from '../support/nodeHarness';

let dir: string;
before(async () => (dir = await tempDir('mount-table')));
after(() => removeDir(dir));

test('two detaches of one mount at once both succeed: a mount the other already took is no failure', async () => {
  for (let round = 0; round < 5; round++) {
    const path = join(dir, `m${round}`);
    await mkdir(path, { recursive: true });
    const mounted = await run('mount', ['-t', 'tmpfs', 'tmpfs', path]);
    assert.equal(mounted.code, 0, mounted.stderr);
    await Promise.all([detachAll(path), detachAll(path), detachAll(path)]);
    assert.deepEqual(await mountsAt(path), []);
  }
});
