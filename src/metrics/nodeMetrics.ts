import { Counter, Gauge, Histogram, Metric, Registry } from 'prom-client';

/** Seconds, from a warm publish (milliseconds) to a large fetch (minutes). */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
const PRIORITIES = ['read', 'manifest', 'source', 'binary', 'background'];

/** What the node's metrics read when scraped, each from the component that keeps it. */
export interface MetricSources {
  hydration(): { queuedByPriority: number[]; inFlight: number; fetchBatches: number; blobsHydrated: number; bytesHydrated: number; failures: number };
  cache(): { blobs: number; bytes: number; maxBytes: number; segments: number; evictions: number; keptBytes: number; corruptDiscarded: number };
  fuse: {
    operations(): Array<{ op: string; count: number; sumSeconds: number; buckets: number[] }>;
    errors(): Array<{ op: string; errno: string; count: number }>;
    reads(): { hits: number; misses: number };
  };
  /** Upper bounds of the FUSE latency buckets, in seconds. */
  fuseBounds: number[];
  treeMounts(): number;
  /** Bytes received from remotes, by host. */
  receivedBytes(): ReadonlyMap<string, number>;
}

/**
 * The node plugin's Prometheus metrics, in a registry of their own. Durations are observed as they
 * happen (histograms here); counts each component already keeps are read when scraped, so each
 * has one owner. Labels are bounded: no commit ids, paths or repository URLs.
 */
export class NodeMetrics {
  readonly registry = new Registry();
  readonly csiRequests = new Histogram({
    name: 'gitfs_csi_request_duration_seconds',
    help: 'CSI Node calls (publish, unpublish, stats) by method and gRPC status code, and how long each took',
    labelNames: ['method', 'code'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly timeToReady = new Histogram({
    name: 'gitfs_volume_time_to_ready_seconds',
    help: 'From a publish call to its volume serving the tree (every entry listable)',
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly preparationPhases = new Histogram({
    name: 'gitfs_preparation_phase_duration_seconds',
    help: 'Phases of preparing a commit (fetching, indexing, sizing), by outcome',
    labelNames: ['phase', 'outcome'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly hydrationWait = new Histogram({
    name: 'gitfs_hydration_wait_seconds',
    help: 'From a blob first being asked for to its bytes being in the cache, by the priority it was asked at',
    labelNames: ['priority'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly fetchBatchBlobs = new Histogram({
    name: 'gitfs_hydration_fetch_batch_blobs',
    help: 'Blobs per fetch by id',
    buckets: BATCH_BUCKETS,
    registers: [this.registry],
  });

  /** Told by the hydrator of each fetch and arrival. */
  readonly hydration = {
    fetched: (blobs: number) => this.fetchBatchBlobs.observe(blobs),
    arrived: (priority: number, seconds: number) => this.hydrationWait.observe({ priority: PRIORITIES[priority] ?? 'background' }, seconds),
  };

  /** Reads the rest from `sources` on every scrape. */
  readFrom(sources: MetricSources): void {
    const registers = [this.registry];
    const counter = (name: string, help: string, value: () => number) =>
      new Counter({ name, help, registers, collect() {
        this.reset();
        this.inc(value());
      } });
    const gauge = (name: string, help: string, value: () => number) => new Gauge({ name, help, registers, collect() {
      this.set(value());
    } });
    gauge('gitfs_tree_mounts', 'Commits mounted on this node (one FUSE mount each, shared by their volumes)', sources.treeMounts);
    counter('gitfs_hydration_blobs_total', 'Blobs brought into the cache', () => sources.hydration().blobsHydrated);
    counter('gitfs_hydration_bytes_total', 'Bytes of blobs brought into the cache', () => sources.hydration().bytesHydrated);
    counter('gitfs_hydration_fetch_requests_total', 'Fetches of blobs from remotes (by id, or a whole tree)', () => sources.hydration().fetchBatches);
    counter('gitfs_hydration_failures_total', 'Blob requests that failed', () => sources.hydration().failures);
    gauge('gitfs_hydration_in_flight', 'Blobs being fetched now', () => sources.hydration().inFlight);
    new Gauge({
      name: 'gitfs_hydration_queue_depth',
      help: 'Blobs waiting to be fetched, by priority',
      labelNames: ['priority'] as const,
      registers,
      collect() {
        sources.hydration().queuedByPriority.forEach((queued, priority) => this.set({ priority: PRIORITIES[priority] }, queued));
      },
    });
    gauge('gitfs_cache_bytes', 'Bytes of the cache\'s segment files (records of blobs dropped or moved count until their segment goes)', () => sources.cache().bytes);
    gauge('gitfs_cache_budget_bytes', 'The cache budget (--cache-max-bytes)', () => sources.cache().maxBytes);
    gauge('gitfs_cache_blobs', 'Blobs in the cache', () => sources.cache().blobs);
    gauge('gitfs_cache_segments', 'Segment files in the cache', () => sources.cache().segments);
    counter('gitfs_cache_evictions_total', 'Blobs evicted to keep the cache within its budget', () => sources.cache().evictions);
    counter('gitfs_cache_kept_bytes_total', 'Bytes of recently read blobs written again when their segment was removed (eviction\'s second chance)', () => sources.cache().keptBytes);
    counter('gitfs_cache_verification_failures_total', 'Cached blobs whose content did not match their id, discarded to be fetched again', () => sources.cache().corruptDiscarded);
    counter('gitfs_cache_hits_total', 'File reads answered from the cache', () => sources.fuse.reads().hits);
    counter('gitfs_cache_misses_total', 'File reads that waited for their blob', () => sources.fuse.reads().misses);
    new Counter({
      name: 'gitfs_fuse_errors_total',
      help: 'FUSE requests answered with an error, by operation and errno (ENOSYS of open, opendir, flush and statx comes once per mount: the kernel then does without them)',
      labelNames: ['op', 'errno'] as const,
      registers,
      collect() {
        this.reset();
        for (const { op, errno, count } of sources.fuse.errors()) this.inc({ op, errno }, count);
      },
    });
    new Counter({
      name: 'gitfs_remote_received_bytes_total',
      help: 'Bytes received from remotes by our own protocol-v2 client, by repository host',
      labelNames: ['host'] as const,
      registers,
      collect() {
        this.reset();
        for (const [host, bytes] of sources.receivedBytes()) this.inc({ host }, bytes);
      },
    });
    this.registry.registerMetric(fuseRequestHistogram(sources) as unknown as Metric);
  }

  /** Reads the node's published volumes, by mode, on every scrape. */
  readVolumesFrom(count: () => { readOnly: number; writable: number }): void {
    new Gauge({
      name: 'gitfs_volumes',
      help: 'Volumes published on this node, by mode',
      labelNames: ['mode'] as const,
      registers: [this.registry],
      collect() {
        const { readOnly, writable } = count();
        this.set({ mode: 'read-only' }, readOnly);
        this.set({ mode: 'writable' }, writable);
      },
    });
  }

  /** Records the phases of one preparation as it emits them ('phase', name), and how it ended. */
  watchPreparation(preparation: { on(event: 'phase', listener: (phase: string) => void): unknown }): void {
    let phase = 'fetching';
    let since = performance.now();
    preparation.on('phase', (next: string) => {
      if (next === phase) return;
      const outcome = next === 'failed' ? 'failed' : 'done';
      // 'ready' is the moment the tree is served; its time runs until sizing starts, with nothing to measure.
      if (phase !== 'ready') this.preparationPhases.observe({ phase, outcome }, (performance.now() - since) / 1000);
      phase = next;
      since = performance.now();
    });
  }
}

/** FUSE requests by operation, latency buckets counted in shared memory by the serving threads. */
function fuseRequestHistogram(sources: MetricSources) {
  const name = 'gitfs_fuse_request_duration_seconds';
  const help = 'FUSE requests by operation, and how long each took to answer (a read that waits for its blob included)';
  return {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    reset: () => undefined,
    get: async () => {
      const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
      for (const { op, count, sumSeconds, buckets } of sources.fuse.operations()) {
        let cumulative = 0;
        buckets.forEach((inBucket, i) => {
          cumulative += inBucket;
          values.push({ metricName: `${name}_bucket`, labels: { le: i < sources.fuseBounds.length ? sources.fuseBounds[i] : '+Inf', op }, value: cumulative });
        });
        values.push({ metricName: `${name}_sum`, labels: { op }, value: sumSeconds });
        values.push({ metricName: `${name}_count`, labels: { op }, value: count });
      }
      return { name, help, type: 'histogram', values, aggregator: 'sum' };
    },
  };
}
