import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { storesDirOf } from '../config/nodeConfig';
import { CommitRecord } from '../prepare/commitRecord';
import { NodeMachinery } from '../prepare/nodeMachinery';
import { NodeVolumes, VolumeState } from '../volume/nodeVolumes';

/** What a node holds, as `gitfs-csi status` shows it. Never a secret, never read through a mount. */
export interface NodeStatus {
  version: string;
  uptimeSeconds: number;
  trees: TreeState[];
  volumes: VolumeState[];
  cache: { bytes: number; budgetBytes: number; blobs: number; readHits: number; readMisses: number };
  stores: Array<{ name: string; bytes: number }>;
}

export interface TreeState {
  repository: string;
  commit: string;
  /** "ready", "fetching", … or "failed". */
  phase: string;
  failure?: string;
  mounted: boolean;
  volumes: number;
  entries?: number;
  /** Bytes of the tree's files in the cache, and of all its files. */
  cachedBytes?: number;
  totalBytes?: number;
  ageSeconds: number;
}

export async function nodeStatus(node: NodeMachinery, volumes: NodeVolumes, version: string): Promise<NodeStatus> {
  const cache = node.cache.stats();
  const reads = node.readStats();
  return {
    version,
    uptimeSeconds: Math.round(process.uptime()),
    trees: node.commits.all().map((record) => treeState(node, record)),
    volumes: volumes.list(),
    cache: { bytes: cache.bytes, budgetBytes: cache.maxBytes, blobs: cache.blobs, readHits: reads.hits, readMisses: reads.misses },
    stores: await storeSizes(storesDirOf(node.config)),
  };
}

function treeState(node: NodeMachinery, record: CommitRecord): TreeState {
  const preparation = record.preparation;
  const tree = preparation.gate.value;
  const state: TreeState = {
    repository: preparation.access.remote.display,
    commit: preparation.resolved.commit,
    phase: preparation.phase,
    mounted: record.hasMount,
    volumes: record.consumerCount,
    ageSeconds: Math.round((Date.now() - record.createdAt) / 1000),
  };
  if (preparation.failure) state.failure = preparation.failure.message;
  if (!tree) return state;
  const { index } = tree;
  let cachedBytes = 0;
  for (let entry = 0; entry < index.count; entry++) {
    if (index.isBlob(entry) && node.cache.has(index.oid(entry))) cachedBytes += Math.max(0, index.size(entry));
  }
  return { ...state, entries: index.count, cachedBytes, totalBytes: index.totalBytes };
}

/** Each repository store's bytes on disk (its own small tree of files, not a mount). */
async function storeSizes(dir: string): Promise<Array<{ name: string; bytes: number }>> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return Promise.all(names.map(async (name) => ({ name, bytes: await bytesUnder(join(dir, name)) })));
}

async function bytesUnder(dir: string): Promise<number> {
  let bytes = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (entry.isFile()) bytes += await stat(join(entry.parentPath ?? entry.path, entry.name)).then((s) => s.size, () => 0);
  }
  return bytes;
}
