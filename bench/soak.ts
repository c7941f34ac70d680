import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { readMountTable } from '../src/mount/mountTable';
import { CsiPlugin, publishRequest } from '../test/support/csiPlugin';
import { GitHttpServer } from '../test/support/gitHttpServer';
import { commitTree, generatedTree, removeDir, tempDir } from '../test/support/repoFixtures';
import { freePort } from '../test/support/freePort';

const COMMITS = Number(process.env.SOAK_COMMITS ?? 500);
const LIVE = 20;
const GRACE_MS = 2_000;
const CACHE_BUDGET = 8 * 1024 * 1024;
const SAMPLE_EVERY = 10;
/** The Dockerfile's ENTRYPOINT passes the same. */
const IMAGE_V8_FLAGS = '--max-semi-space-size=2';
const DOCS = resolve(__dirname, '../../docs');

interface Sample {
  published: number;
  rssBytes: number;
  heapBytes: number;
  fds: number;
  threads: number;
  handles: number;
  children: number;
  cacheBytes: number;
  externalBytes: number;
}

/**
 * `npm run soak`: a real node plugin (its own process, driven over gRPC like kubelet would) publishes
 * 500 distinct commits, each read a little (README and its 40 small files) and unpublished in turn
 * with at most 20 live, under a cache budget (8 MiB) smaller than what they bring (40 MB). Samples its RSS, heap, descriptors, threads, handles and
 * children every ten publishes (from its own /metrics and /proc), then, after the last grace period,
 * compares with where it stood after the first twenty and lists what is left over. Prints rows as
 * JSON and draws docs/soak.svg (and docs/soak.png with rsvg-convert, where installed).
 */
async function main(): Promise<void> {
  const dir = await tempDir('soak');
  const server = new GitHttpServer(join(dir, 'served'));
  await server.start();
  const bare = join(dir, 'served', 'app.git');
  for (let i = 0; i < COMMITS; i++) await commitTree(bare, generatedTree(40, i + 1), { branch: `b${i}`, message: `commit ${i}` });
  const port = await freePort();
  const plugin = await CsiPlugin.start(join(dir, 'plugin'), {
    args: ['--metrics-address', `127.0.0.1:${port}`, '--tree-grace-ms', String(GRACE_MS), '--cache-max-bytes', String(CACHE_BUDGET), '--log-level', 'warn'],
    // V8's flags as the image runs the plugin (Dockerfile), unless SOAK_PLUGIN_ENV says otherwise.
    env: process.env.SOAK_PLUGIN_ENV ? Object.fromEntries(process.env.SOAK_PLUGIN_ENV.split(',').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])) : { NODE_OPTIONS: IMAGE_V8_FLAGS },
  });
  const metrics = async () => parseMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
  const sample = async (published: number): Promise<Sample> => {
    const m = await metrics();
    const status = await readFile(`/proc/${plugin.pid}/status`, 'utf8');
    const { stdout } = await promisify(execFile)('ps', ['--ppid', String(plugin.pid), '-o', 'pid=']).catch(() => ({ stdout: '' }));
    return {
      published,
      rssBytes: m.get('process_resident_memory_bytes')!,
      heapBytes: m.get('nodejs_heap_size_used_bytes')!,
      fds: (await readdir(`/proc/${plugin.pid}/fd`)).length,
      threads: Number(/^Threads:\s+(\d+)/m.exec(status)![1]),
      handles: m.get('nodejs_active_handles_total')!,
      children: stdout.split('\n').filter(Boolean).length,
      cacheBytes: m.get('gitfs_cache_bytes')!,
      externalBytes: m.get('nodejs_external_memory_bytes')!,
    };
  };
  const samples: Sample[] = [];
  const live: Array<{ id: string; target: string }> = [];
  const unpublish = async (volume: { id: string; target: string }) => {
    await plugin.call('Node', 'NodeUnpublishVolume', { volume_id: volume.id, target_path: volume.target });
  };
  let baseline: Sample | undefined;
  try {
    for (let i = 0; i < COMMITS; i++) {
      const volume = { id: `soak-${i}`, target: join(dir, 'targets', `t${i}`) };
      await plugin.call('Node', 'NodePublishVolume', publishRequest({ volumeId: volume.id, target: volume.target, context: { repository: server.url('app.git'), ref: `b${i}` } }));
      // A little of each (its 40 small files, 80 KB; the fixture's 3 MiB file is the same blob in every commit),
      // so that 500 commits bring more than the cache may hold.
      for (const file of ['README.md', ...Array.from({ length: 40 }, (_, k) => generatedFile(k))]) await readFile(join(volume.target, file));
      live.push(volume);
      if (live.length > LIVE) await unpublish(live.shift()!);
      if (i + 1 === LIVE) samples.push((baseline = await sample(i + 1)));
      else if ((i + 1) % SAMPLE_EVERY === 0) samples.push(await sample(i + 1));
    }
    while (live.length > 0) await unpublish(live.shift()!);
    // Every tree mount's grace period and the git readers' idle time (5 s), then a moment for the collector.
    await new Promise((r) => setTimeout(r, GRACE_MS + Number(process.env.SOAK_SETTLE_MS ?? 8_000)));
    const final = await sample(COMMITS);
    samples.push(final);
    const left = await leftOver(plugin);
    const rows = [
      row(`RSS after ${COMMITS} commits (after the last grace period)`, final.rssBytes / 2 ** 20, baseline!.rssBytes / 2 ** 20, 'MiB', '≤ 1.1×'),
      row('heap used', final.heapBytes / 2 ** 20, baseline!.heapBytes / 2 ** 20, 'MiB'),
      row('open descriptors', final.fds, baseline!.fds, 'count', '≤ 1.0×'),
      row('threads', final.threads, baseline!.threads, 'count', '≤ 1.0×'),
      row('active handles (sockets, timers, …)', final.handles, baseline!.handles, 'count', '≤ 1.0×'),
      row('child processes', final.children, baseline!.children, 'count'),
      row('cache bytes', final.cacheBytes / 2 ** 20, CACHE_BUDGET / 2 ** 20, 'MiB', '≤ 1.0× the budget'),
    ];
    await mkdir(DOCS, { recursive: true });
    await writeFile(join(DOCS, 'soak.svg'), chart(samples, baseline!));
    await promisify(execFile)('rsvg-convert', ['-o', join(DOCS, 'soak.png'), join(DOCS, 'soak.svg')]).catch(() => process.stderr.write('rsvg-convert is not installed (apt-get install librsvg2-bin): docs/soak.png not drawn\n'));
    process.stdout.write(`${JSON.stringify({ rows, leftOver: left, samples }, null, 1)}\n`);
  } catch (err) {
    // The plugin's own words on what failed.
    (err as Error).message += `\n${plugin.logs.trimEnd().split('\n').slice(-15).join('\n')}`;
    throw err;
  } finally {
    await plugin.stop().catch(() => undefined);
    await server.stop();
    await removeDir(dir);
  }
}

/** The path of file `k` of generatedTree(). */
function generatedFile(k: number): string {
  return `src/mod${k % 23}/pkg${k % 7}${k % 3 === 0 ? '/deep/er' : ''}/file${k}.${k % 5 === 0 ? 'go' : 'txt'}`;
}

function row(measure: string, ours: number, baseline: number, unit: string, target?: string) {
  return { corpus: `soak, ${COMMITS} commits`, measure, ours, baseline, baselineName: unit === 'MiB' && measure === 'cache bytes' ? 'the budget' : `after the first ${LIVE}`, unit, ...(target ? { target } : {}) };
}

/** What a quiet node plugin should not have: mounts, state files of volumes, views, layers or tree directories. */
async function leftOver(plugin: CsiPlugin): Promise<string[]> {
  const left: string[] = [];
  for (const mount of await readMountTable()) if (mount.mountPoint.startsWith(plugin.dir)) left.push(`mount ${mount.mountPoint}`);
  for (const sub of ['volumes', 'views', 'layers', 'trees']) {
    const entries = await readdir(join(plugin.stateDir, sub), { recursive: true }).catch(() => [] as string[]);
    // The spare layer is kept ready on purpose (the next writable volume's).
    for (const entry of entries) if (!entry.startsWith('spares')) left.push(`${sub}/${entry}`);
  }
  return left;
}

function parseMetrics(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (match && !values.has(match[1])) values.set(match[1], Number(match[2]));
  }
  return values;
}


/** RSS and heap (MiB, left axis) and descriptors (right axis) against commits published. */
function chart(samples: Sample[], baseline: Sample): string {
  const [w, h, left, right, top, bottom] = [900, 420, 70, 70, 40, 50];
  const maxX = samples[samples.length - 1].published;
  const maxMiB = Math.ceil(Math.max(...samples.map((s) => s.rssBytes)) / 2 ** 20 / 40) * 40;
  const maxFds = Math.ceil(Math.max(...samples.map((s) => s.fds)) / 20) * 20;
  const x = (v: number) => left + ((w - left - right) * v) / maxX;
  const yMiB = (v: number) => h - bottom - ((h - top - bottom) * v) / maxMiB;
  const yFds = (v: number) => h - bottom - ((h - top - bottom) * v) / maxFds;
  const line = (points: Array<[number, number]>, colour: string) => `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${points.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(' ')}"/>`;
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="12">
<rect width="${w}" height="${h}" fill="white"/>
<text x="${w / 2}" y="22" text-anchor="middle" font-size="15">gitfs-csi node plugin over ${maxX} commits published (${LIVE} live at most)</text>
${ticks.map((t) => `<line x1="${left}" x2="${w - right}" y1="${yMiB(t * maxMiB)}" y2="${yMiB(t * maxMiB)}" stroke="#ddd"/><text x="${left - 6}" y="${yMiB(t * maxMiB) + 4}" text-anchor="end">${Math.round(t * maxMiB)}</text><text x="${w - right + 6}" y="${yFds(t * maxFds) + 4}">${Math.round(t * maxFds)}</text>`).join('\n')}
${ticks.map((t) => `<text x="${x(t * maxX)}" y="${h - bottom + 18}" text-anchor="middle">${Math.round(t * maxX)}</text>`).join('\n')}
<text x="${w / 2}" y="${h - 10}" text-anchor="middle">commits published</text>
<text x="18" y="${h / 2}" transform="rotate(-90 18 ${h / 2})" text-anchor="middle">MiB</text>
<text x="${w - 14}" y="${h / 2}" transform="rotate(90 ${w - 14} ${h / 2})" text-anchor="middle">open descriptors</text>
<line x1="${x(baseline.published)}" x2="${x(baseline.published)}" y1="${top}" y2="${h - bottom}" stroke="#999" stroke-dasharray="4 4"/>
${line(samples.map((s) => [x(s.published), yMiB(s.rssBytes / 2 ** 20)]), '#1f77b4')}
${line(samples.map((s) => [x(s.published), yMiB(s.heapBytes / 2 ** 20)]), '#2ca02c')}
${line(samples.map((s) => [x(s.published), yFds(s.fds)]), '#d62728')}
<g transform="translate(${w - right - 242},${(h - top - bottom) / 2 + top - 31})"><rect width="230" height="62" fill="white" stroke="#ccc"/>
<line x1="8" x2="30" y1="14" y2="14" stroke="#1f77b4" stroke-width="2"/><text x="36" y="18">RSS (MiB)</text>
<line x1="8" x2="30" y1="32" y2="32" stroke="#2ca02c" stroke-width="2"/><text x="36" y="36">heap used (MiB)</text>
<line x1="8" x2="30" y1="50" y2="50" stroke="#d62728" stroke-width="2"/><text x="36" y="54">open descriptors (right axis)</text></g>
</svg>
`;
}

main().catch((err) => {
  process.stderr.write(`soak failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
