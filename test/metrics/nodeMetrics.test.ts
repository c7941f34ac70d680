import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CsiPlugin, outcome, publishRequest } from '../support/csiPlugin';
import { GitHttpServer } from '../support/gitHttpServer';
import { runCli } from '../support/mountCli';
import { commitTree, generatedTree, removeDir, tempDir } from '../support/repoFixtures';
import { freePort } from '../support/freePort';


/** Every sample of a Prometheus text exposition, keyed `name{label="value",…}` with labels sorted. */
function samples(text: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels = (match[2] ?? '').match(/\w+="(?:[^"\\]|\\.)*"/g) ?? [];
    found.set(`${match[1]}{${labels.sort().join(',')}}`, Number(match[3]));
  }
  return found;
}

describe('Prometheus metrics of a node plugin', () => {
  let dir: string;
  let server: GitHttpServer;
  let plugin: CsiPlugin;
  let commit: string;
  let scrapeUrl: string;
  const scrape = async () => {
    const response = await fetch(scrapeUrl);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return response.text();
  };
  const value = (all: Map<string, number>, key: string) => all.get(key) ?? 0;

  before(async () => {
    dir = await tempDir('metrics');
    server = new GitHttpServer(join(dir, 'served'));
    await server.start();
    commit = await commitTree(join(dir, 'served', 'app.git'), generatedTree(80));
    const port = await freePort();
    scrapeUrl = `http://127.0.0.1:${port}/metrics`;
    plugin = await CsiPlugin.start(join(dir, 'plugin'), { args: ['--metrics-address', `127.0.0.1:${port}`, '--cache-max-bytes', '64Mi'] });
  });
  after(async () => {
    await plugin.stop();
    await server.stop();
    await removeDir(dir);
  });

  test('publishes by code, time to ready, phases, FUSE requests and errors, hydration, cache and remote bytes; no commit, path or URL in a label', async () => {
    const idle = samples(await scrape());
    assert.equal(value(idle, 'gitfs_volumes{mode="read-only"}'), 0);
    assert.equal(value(idle, 'gitfs_cache_budget_bytes{}'), 64 * 1024 * 1024);
    assert.ok(idle.has('process_resident_memory_bytes{}'), 'the process metrics are there');

    const target = join(dir, 'target');
    const request = publishRequest({ volumeId: 'vol-1', target, context: { repository: server.url('app.git'), readiness: 'wait' } });
    assert.equal((await outcome(plugin.call('Node', 'NodePublishVolume', request))).code, 'OK');
    const refused = publishRequest({ volumeId: 'vol-2', target: join(dir, 'other'), context: { repository: server.url('app.git'), depth: 'deep' } });
    assert.equal((await outcome(plugin.call('Node', 'NodePublishVolume', refused))).code, 'INVALID_ARGUMENT');

    // Read one file (a miss: it waits for its blob), let the prefetch bring the rest, then read them all (hits).
    await readFile(join(target, 'README.md'));
    await stat(join(target, 'no-such-file')).catch(() => undefined);
    const files: string[] = [];
    const walk = async (at: string): Promise<void> => {
      for (const entry of await readdir(at, { withFileTypes: true })) {
        if (entry.name === '.git') continue;
        if (entry.isDirectory()) await walk(join(at, entry.name));
        else if (entry.isFile()) files.push(join(at, entry.name));
      }
    };
    await walk(target);
    for (let i = 0; i < 100 && value(samples(await scrape()), 'gitfs_hydration_blobs_total{}') < files.length - 5; i++) await new Promise((r) => setTimeout(r, 50));
    for (const file of files) await readFile(file);

    const text = await scrape();
    const all = samples(text);
    assert.equal(value(all, 'gitfs_csi_request_duration_seconds_count{code="OK",method="NodePublishVolume"}'), 1);
    assert.equal(value(all, 'gitfs_csi_request_duration_seconds_count{code="INVALID_ARGUMENT",method="NodePublishVolume"}'), 1);
    assert.equal(value(all, 'gitfs_volumes{mode="read-only"}'), 1);
    assert.equal(value(all, 'gitfs_volumes{mode="writable"}'), 0);
    assert.equal(value(all, 'gitfs_tree_mounts{}'), 1);
    assert.equal(value(all, 'gitfs_volume_time_to_ready_seconds_count{}'), 1);
    for (const phase of ['fetching', 'indexing', 'sizing']) assert.equal(value(all, `gitfs_preparation_phase_duration_seconds_count{outcome="done",phase="${phase}"}`), 1, phase);
    // Listings come with their entries' attributes (READDIRPLUS): few lookups.
    assert.ok(value(all, 'gitfs_fuse_request_duration_seconds_count{op="readdirplus"}') >= 1);
    assert.ok(value(all, 'gitfs_fuse_request_duration_seconds_count{op="lookup"}') >= 1);
    assert.ok(value(all, 'gitfs_fuse_request_duration_seconds_count{op="read"}') >= files.length);
    assert.equal(value(all, 'gitfs_fuse_request_duration_seconds_bucket{le="+Inf",op="read"}'), value(all, 'gitfs_fuse_request_duration_seconds_count{op="read"}'));
    // Opens are answered ENOSYS once per mount: the kernel then opens files without asking.
    assert.equal(value(all, 'gitfs_fuse_errors_total{errno="ENOSYS",op="open"}'), 1);
    assert.equal(value(all, 'gitfs_fuse_errors_total{errno="EIO",op="read"}'), 0);
    assert.ok(value(all, 'gitfs_hydration_blobs_total{}') >= files.length - 1);
    assert.ok(value(all, 'gitfs_hydration_bytes_total{}') > 0);
    assert.ok(value(all, 'gitfs_hydration_fetch_requests_total{}') >= 1);
    assert.ok(value(all, 'gitfs_hydration_wait_seconds_count{priority="read"}') >= 1);
    assert.ok(value(all, 'gitfs_cache_misses_total{}') >= 1);
    assert.ok(value(all, 'gitfs_cache_hits_total{}') >= files.length / 2);
    assert.ok(value(all, 'gitfs_cache_blobs{}') >= files.length - 1);
    assert.ok(value(all, 'gitfs_cache_segments{}') >= 1);
    assert.equal(value(all, 'gitfs_cache_kept_bytes_total{}'), 0, 'nothing evicted under a budget this large');
    assert.ok(value(all, `gitfs_remote_received_bytes_total{host="${new URL(server.url('app.git')).host}"}`) > 0);
    assert.equal(value(all, 'gitfs_hydration_queue_depth{priority="read"}'), 0);
    // Every series the chart's Grafana dashboard plots is one the plugin exports.
    const dashboard = await readFile(join(__dirname, '../../../charts/gitfs-csi/dashboards/gitfs-csi.json'), 'utf8');
    const plotted = new Set([...dashboard.matchAll(/\b((?:gitfs|process|nodejs)_\w+?)(?:_bucket|_sum|_count)?\b/g)].map((m) => m[1]));
    const exported = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
    assert.ok(plotted.size >= 20, `${plotted.size} series plotted`);
    for (const name of plotted) assert.ok(exported.has(name), `the dashboard plots ${name}, which the plugin does not export`);
    // Labels stay bounded: nothing names a commit, a path or a repository.
    assert.doesNotMatch(text, new RegExp(commit.slice(0, 12)));
    assert.doesNotMatch(text, /app\.git|\/tmp\//);

    assert.equal((await outcome(plugin.call('Node', 'NodeUnpublishVolume', { volume_id: 'vol-1', target_path: target }))).code, 'OK');
    assert.equal(value(samples(await scrape()), 'gitfs_volumes{mode="read-only"}'), 0);
    assert.equal((await fetch(scrapeUrl.replace('/metrics', '/'))).status, 404);
  });

  test('a bad --metrics-address is refused at start, naming the flag', async () => {
    for (const address of ['9808', 'localhost:99999', 'host:port']) {
      const result = await runCli(['node', '--metrics-address', address, '--state-dir', join(dir, 'bad-state'), '--cache-dir', join(dir, 'bad-cache')]);
      assert.notEqual(result.code, 0, address);
      assert.match(result.stderr, new RegExp(`--metrics-address: "${address}" is not an address to listen on; expected host:port or :port`));
    }
  });
});
