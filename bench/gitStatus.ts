import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { nodeConfig } from '../src/config/nodeConfig';
import { silentLogger } from '../src/log/logger';
import { NodeMachinery } from '../src/prepare/nodeMachinery';
import { PublishRequest } from '../src/prepare/publisher';
import { best, Row, timed } from './measure';

const RUNS = 5;

/**
 * `git status` in a fresh volume against `git status` in a clone of the same commit (depth 1,
 * checked out on ext4): each warm (best of five after one run, the clone's alternating with the
 * volume's), read-only and writable, and the first run in a volume, which also makes the history
 * pack and the index. Counts the blobs the volume's runs hydrated (the target is none).
 */
export async function benchGitStatus(name: string, url: string, work: string): Promise<Row[]> {
  await mkdir(work, { recursive: true });
  const clone = join(work, 'clone');
  await timed('git', ['clone', '-q', '--depth', '1', url, clone]);
  const status = (dir: string) => timed('git', ['-C', dir, 'status', '--porcelain']);
  await status(clone);

  const node = await NodeMachinery.open(nodeConfig({ stateDir: join(work, 'state'), cacheDir: join(work, 'cache'), treeMountGraceMs: 0 }), silentLogger);
  const rows: Row[] = [];
  try {
    for (const writable of [false, true]) {
      const target = join(work, writable ? 'writable' : 'read-only');
      const request: PublishRequest = { repository: url, depth: 1, target, ...(writable ? { writable: { limitBytes: 1024 ** 3 } } : {}) };
      await (await node.publisher.publish(request)).preparation.sizes.wait(120_000);
      const before = node.hydrator.stats().blobsHydrated;
      const firstMs = await status(target);
      // The clone's runs alternate with the volume's, so both meet the same moment of this VM.
      let cloneMs = Infinity;
      const warmMs = await best(RUNS, async () => {
        cloneMs = Math.min(cloneMs, await status(clone));
        return status(target);
      });
      const hydrated = node.hydrator.stats().blobsHydrated - before;
      const kind = writable ? 'writable' : 'read-only';
      rows.push(
        { corpus: name, measure: `git status in a fresh ${kind} volume, warm (blobs hydrated: ${hydrated})`, ours: warmMs, baseline: cloneMs, baselineName: 'git status in a clone, warm', unit: 'ms', target: '≤ 1.5×' },
        { corpus: name, measure: `git status in a fresh ${kind} volume, first run (makes .git's pack and index)`, ours: firstMs, baseline: cloneMs, baselineName: 'git status in a clone, warm', unit: 'ms' },
      );
      await node.publisher.unpublish(target);
    }
  } finally {
    await node.close();
  }
  return rows;
}

