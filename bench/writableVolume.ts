import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { layersDirOf, nodeConfig } from '../src/config/nodeConfig';
import { silentLogger } from '../src/log/logger';
import { NodeMachinery } from '../src/prepare/nodeMachinery';
import { PublishRequest } from '../src/prepare/publisher';
import { git } from '../test/support/repoFixtures';
import { interleavedMedians, Row, time, timed } from './measure';

const WRITE_LIMIT_BYTES = 2 * 1024 ** 3;
const TARBALL_FILES = 5000;

async function spareReady(node: NodeMachinery, limitBytes: number): Promise<void> {
  node.publisher.keepSpareLayer(limitBytes);
  const spare = join(layersDirOf(node.config), 'spares', `${limitBytes}.img`);
  for (let i = 0; i < 200 && !(await access(spare).then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 25));
}

/**
 * Writable volumes against read-only ones and ext4: time to ready of each from a fresh node
 * (interleaved, best of three; the writable one's node has made its spare layer, as a node plugin
 * does when it starts), and a write-heavy step, a 5,000-file tarball of the commit's own
 * files extracted into the volume and into an ext4 directory (and synced), in turn, medians of five.
 */
export async function benchWritable(name: string, url: string, bareDir: string, work: string): Promise<Row[]> {
  await mkdir(work, { recursive: true });
  let nodes = 0;
  const fresh = () => {
    const dir = join(work, `node-${++nodes}`);
    return NodeMachinery.open(nodeConfig({ stateDir: join(dir, 'state'), cacheDir: join(dir, 'cache'), treeMountGraceMs: 0 }), silentLogger);
  };
  const ready = async (request: PublishRequest): Promise<number> => {
    const node = await fresh();
    try {
      // As a node plugin does from its start: a formatted layer of the write limit kept ready.
      if (request.writable) await spareReady(node, request.writable.limitBytes);
      await timed('sync', []);
      const [ms] = await time(async () => (await node.publisher.publish(request)).preparation.gate.wait(120_000));
      await node.publisher.unpublish(request.target);
      return ms;
    } finally {
      await node.close();
    }
  };
  const target = join(work, 'volume');
  const writable = { limitBytes: WRITE_LIMIT_BYTES };
  let readOnlyMs = Infinity;
  let writableMs = Infinity;
  for (let run = 0; run < 3; run++) {
    readOnlyMs = Math.min(readOnlyMs, await ready({ repository: url, depth: 1, target }));
    writableMs = Math.min(writableMs, await ready({ repository: url, depth: 1, target, writable }));
  }

  // The tarball: the commit's first files, from the repository itself.
  const tarball = join(work, 'files.tar');
  const commit = (await git(['--git-dir', bareDir, 'rev-parse', 'HEAD'])).trim();
  const paths = (await git(['--git-dir', bareDir, 'ls-tree', '-r', '--name-only', commit])).split('\n').filter(Boolean).slice(0, TARBALL_FILES);
  await git(['--git-dir', bareDir, 'archive', '--format=tar', '-o', tarball, commit, '--', ...paths]);
  const node = await fresh();
  let extracts = 0;
  const extractInto = async (dir: string) => {
    const into = join(dir, `extracted-${++extracts}`);
    await mkdir(into);
    return timed('sh', ['-c', `tar -xf '${tarball}' -C '${into}' && sync -f '${into}'`]);
  };
  try {
    await (await node.publisher.publish({ repository: url, depth: 1, target, writable })).preparation.sizes.wait(120_000);
    const ext4 = join(work, 'ext4');
    await mkdir(ext4);
    await extractInto(ext4);
    await extractInto(target);
    const [ext4Ms, volumeMs] = await interleavedMedians(5, () => extractInto(ext4), () => extractInto(target));
    return [
      { corpus: name, measure: 'time to ready, writable volume', ours: writableMs, baseline: readOnlyMs, baselineName: 'time to ready, read-only volume', unit: 'ms', target: '≤ 1.1×' },
      { corpus: name, measure: `extract a ${paths.length}-file tarball into a writable volume`, ours: volumeMs, baseline: ext4Ms, baselineName: 'the same into an ext4 directory', unit: 'ms', target: '≤ 1.5×' },
    ];
  } finally {
    await node.publisher.unpublish(target);
    await node.close();
  }
}
